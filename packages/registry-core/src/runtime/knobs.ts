/** The runtime knobs a switch can turn off (README.md in this folder). */
export type Knob = 'IDLE_GC' | 'MALLOC_TRIM' | 'APP_PROTOTYPES';

/**
 * False when `KNOB_<name>=off` is set: a switch for measuring what a knob is
 * worth (the benchmark passes it through to the server; names starting with
 * ENTREPOT_ it does not), not an operator setting.
 */
export function knobOn(knob: Knob, env: NodeJS.ProcessEnv = process.env): boolean {
  return env[`KNOB_${knob}`] !== 'off';
}

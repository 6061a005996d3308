import { knobOn } from '../../src/runtime/knobs';

describe('knobOn', () => {
  it('keeps a knob on unless its switch says off', () => {
    expect(knobOn('IDLE_GC', {})).toBe(true);
    expect(knobOn('IDLE_GC', { KNOB_IDLE_GC: 'on' })).toBe(true);
    expect(knobOn('IDLE_GC', { KNOB_IDLE_GC: 'off' })).toBe(false);
  });

  it('reads each knob from its own switch', () => {
    const env = { KNOB_MALLOC_TRIM: 'off' };
    expect(knobOn('MALLOC_TRIM', env)).toBe(false);
    expect(knobOn('APP_PROTOTYPES', env)).toBe(true);
  });
});

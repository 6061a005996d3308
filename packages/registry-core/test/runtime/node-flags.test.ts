import { NODE_FLAGS, missingNodeFlags } from '../../src/runtime/node-flags';

describe('missingNodeFlags', () => {
  it('names the recommended flags a process was started without', () => {
    expect(missingNodeFlags([])).toEqual([...NODE_FLAGS]);
    expect(missingNodeFlags(['--inspect'])).toEqual([...NODE_FLAGS]);
  });

  it('accepts each flag as recommended or with another value', () => {
    expect(missingNodeFlags([...NODE_FLAGS])).toEqual([]);
    expect(missingNodeFlags(['--initial-old-space-size=128'])).toEqual([]);
    expect(missingNodeFlags(['--initial-old-space-size-typo=64'])).toEqual([...NODE_FLAGS]);
  });
});

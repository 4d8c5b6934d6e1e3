// Every random choice of a campaign comes from one seeded generator, so `--seed S` replays it.

/** mulberry32: small, fast, and good enough to pick scenarios. */
export function createRandom(seed) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const random = {
    next,
    /** An integer in [min, max]. */
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    chance: (p) => next() < p,
    pick: (items) => items[Math.floor(next() * items.length)],
    /** A child generator: one round's choices do not shift when another round draws more. */
    fork: () => createRandom(Math.floor(next() * 2 ** 32)),
  };
  return random;
}

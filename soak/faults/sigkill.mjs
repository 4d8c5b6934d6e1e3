// SIGKILL of a runner: before the lock (while it waits), holding it, mid-statement, around a
// ledger write or commit. The OS ends the process; the database ends its session.
export default {
  option: 'kills',
  rounds: { quick: 8, full: 200 },
  kind: 'sigkill',
  targets: ['postgres', 'mysql', 'sqlite'],
  instants: ['before-lock', 'holding', 'mid-statement', 'ledger-write'],
  victimExits: ['SIGKILL'],
  async inject({ victim }) {
    victim.kill();
    return { signal: 'SIGKILL', pid: victim.pid };
  },
};

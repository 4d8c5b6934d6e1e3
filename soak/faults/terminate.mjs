// The holder's session ended by the server (pg_terminate_backend, MariaDB KILL CONNECTION) while
// its process lives on: the process must notice (exit 5, the session was lost) and leave nothing.
// Only the victim's own session is ended (found by its client port), never the other runner's.
import { clientPorts } from '../lib/sockets.mjs';

export default {
  option: 'terminations',
  rounds: { quick: 4, full: 50 },
  kind: 'backend-termination',
  targets: ['postgres', 'mysql'],
  instants: ['holding', 'mid-statement', 'ledger-write'],
  victimExits: [5],
  async inject({ db, victim }) {
    const backend = await db.holderBackend(clientPorts(victim.pid));
    if (backend === null || backend === undefined) return null;
    // The session may have ended on its own a moment before (the victim finished): not a fault.
    if (!(await db.terminate(backend))) return null;
    return {
      backend: Number(backend),
      how: db.kind === 'postgres' ? 'pg_terminate_backend' : 'KILL CONNECTION',
    };
  },
};

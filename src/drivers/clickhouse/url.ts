import { ConfigError } from '../../errors.js';
import { redactUrl } from '../../util/secrets.js';

/** dbmate's cluster options (its URL parameters), for the mirrored `schema_migrations` table. */
export interface ClusterOptions {
  /** Create the mirror `ON CLUSTER`, replicated. */
  readonly onCluster: boolean;
  readonly clusterMacro: string;
  readonly replicaMacro: string;
  readonly zooPath: string;
}

export interface ClickHouseTarget {
  /** The HTTP(S) endpoint, without credentials or path. */
  readonly endpoint: string;
  readonly username: string;
  readonly password: string;
  readonly database: string;
  readonly cluster: ClusterOptions;
  /** Other URL parameters: ClickHouse settings sent with every statement. */
  readonly settings: Readonly<Record<string, string>>;
}

/** ClickHouse's native-protocol ports: this driver speaks HTTP. */
const NATIVE_PORTS = new Set(['9000', '9440']);

/** lockstep's (and dbmate's) own URL parameters; the rest are ClickHouse settings. */
const OWN_PARAMETERS = new Set(['on_cluster', 'cluster_macro', 'replica_macro', 'zoo_path', 'secure']);

/**
 * `clickhouse://user:password@host:8123/database?on_cluster&…`, `clickhouse+http://…`,
 * `clickhouse+https://…` (or `secure=true`): ClickHouse over HTTP(S). Ports 8123 / 8443 by default.
 */
export function parseClickHouseUrl(url: string): ClickHouseTarget {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError(
      `malformed ClickHouse URL "${redactUrl(url)}": expected clickhouse://user:password@host:8123/database`,
    );
  }
  const scheme = parsed.protocol.slice(0, -1).toLowerCase();
  const query = parsed.searchParams;
  const secure = scheme === 'clickhouse+https' || ['true', '1'].includes(query.get('secure') ?? '');
  if (NATIVE_PORTS.has(parsed.port)) {
    throw new ConfigError(
      `ClickHouse URL "${redactUrl(url)}" names port ${parsed.port}, ClickHouse's native protocol: lockstep ` +
        `speaks HTTP, so give the HTTP port (usually ${secure ? 8443 : 8123})`,
    );
  }
  const port = parsed.port || (secure ? '8443' : '8123');
  const path = decodeURIComponent(parsed.pathname.replace(/^\//, ''));
  if (path.includes('/')) {
    throw new ConfigError(`ClickHouse URL "${redactUrl(url)}": the path is one database name`);
  }
  const onClusterValue = query.get('on_cluster');
  const clusterMacro = query.get('cluster_macro') || '{cluster}';
  const settings: Record<string, string> = {};
  for (const [name, value] of query) if (!OWN_PARAMETERS.has(name)) settings[name] = value;
  return {
    endpoint: `${secure ? 'https' : 'http'}://${parsed.hostname}:${port}`,
    username: decodeURIComponent(parsed.username) || 'default',
    password: decodeURIComponent(parsed.password),
    database: path || 'default',
    cluster: {
      onCluster: onClusterValue !== null && ['', 'true', '1'].includes(onClusterValue),
      clusterMacro,
      replicaMacro: query.get('replica_macro') || '{replica}',
      zooPath: query.get('zoo_path') || `/clickhouse/tables/${clusterMacro}/{table}`,
    },
    settings,
  };
}

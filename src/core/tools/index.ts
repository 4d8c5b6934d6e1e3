import type { Connection, Dialect } from '../../drivers/driver.js';
import { drizzleHistory } from './drizzle.js';
import { golangMigrateHistory } from './golang-migrate.js';
import { gooseHistory } from './goose.js';
import { knexHistory } from './knex.js';
import { nodePgMigrateHistory } from './node-pg-migrate.js';
import { prismaHistory } from './prisma.js';
import type { ToolHistory, ToolHistoryOf, ToolName } from './tool.js';

const HISTORIES: Record<ToolName, ToolHistoryOf> = {
  'golang-migrate': golangMigrateHistory,
  goose: gooseHistory,
  knex: knexHistory,
  'node-pg-migrate': nodePgMigrateHistory,
  prisma: prismaHistory,
  drizzle: drizzleHistory,
};

/** `tool`'s history on this connection, in the table the user named or the tool's default. */
export function toolHistory(
  tool: ToolName,
  connection: Connection,
  dialect: Dialect,
  table?: string,
): ToolHistory {
  return HISTORIES[tool](connection, dialect, table);
}

export { isToolName, TOOL_NAMES, type ToolName } from './tool.js';

/**
 * JavaScript and TypeScript migrations written for knex or node-pg-migrate: lockstep calls a
 * module's `up(ctx)` with its own context, so it must not call theirs (they expect `knex` or
 * `pgm`). Recognised from the text, conservatively: the up function's first parameter is named
 * `knex` or `pgm`, or typed `Knex` or `MigrationBuilder`, or the module imports the tool. Pure.
 */
import type { ToolName } from '../tools/tool.js';

const UP_HEAD = String.raw`(?:\bexports\.up\s*=|\bup\s*[:=]|\bfunction\s+up\b|^\s*(?:async\s+)?up\s*(?=\())\s*(?:async\s*)?(?:function\s*\w*\s*)?\(?\s*`;
const PARAMETER = (names: string, types: string) =>
  new RegExp(`${UP_HEAD}(?:(?:${names})\\b|\\w+\\s*:\\s*(?:${types})\\b)`, 'm');
const KNEX_UP = PARAMETER('knex', 'Knex');
const PGM_UP = PARAMETER('pgm', 'MigrationBuilder');
const IMPORTS = (tool: string) =>
  new RegExp(String.raw`(?:\bfrom\s*|\brequire\s*\(\s*|\bimport\s*\(\s*)['"]${tool}(?:/[^'"]*)?['"]`);
const KNEX_IMPORT = IMPORTS('knex');
const PGM_IMPORT = IMPORTS('node-pg-migrate');

/** The tool a migration module was written for, when it is not lockstep's, and the line that says so. */
export function foreignModuleTool(
  text: string,
): { tool: Extract<ToolName, 'knex' | 'node-pg-migrate'>; line: number } | undefined {
  for (const [tool, patterns] of [
    ['node-pg-migrate', [PGM_UP, PGM_IMPORT]],
    ['knex', [KNEX_UP, KNEX_IMPORT]],
  ] as const) {
    for (const pattern of patterns) {
      const match = pattern.exec(text);
      // The match may start with the white space before it: the line is where its text starts.
      if (match)
        return {
          tool,
          line: text.slice(0, match.index + (match[0].length - match[0].trimStart().length)).split('\n')
            .length,
        };
    }
  }
  return undefined;
}

export function foreignModuleRefusal(tool: 'knex' | 'node-pg-migrate'): string {
  const parameter = tool === 'knex' ? 'knex' : 'pgm';
  return `a ${tool} migration (its up takes ${tool}'s \`${parameter}\`): lockstep cannot run it, it calls up(ctx) with its own context. Already-applied ones are adopted with \`lockstep adopt --from ${tool}\`; write new migrations as lockstep SQL files or up(ctx) modules`;
}

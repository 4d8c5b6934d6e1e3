// results.json and RESULTS.md from one campaign.
import { writeFileSync } from 'node:fs';
import { LABEL } from './databases.mjs';

export function percentile(values, p) {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

const round1 = (v) => (v === null ? null : Math.round(v * 10) / 10);

/** The campaign's figures, from its round records. */
export function summarise(meta, rounds) {
  const perTarget = {};
  for (const r of rounds) {
    perTarget[r.target] ??= {
      races: 0,
      processes: 0,
      racesWithFailure: 0,
      faults: {},
      anomalies: 0,
    };
    const t = perTarget[r.target];
    t.anomalies += r.anomalies.length;
    if (r.type === 'race') {
      t.races++;
      t.processes += r.processes;
      if (r.failing) t.racesWithFailure++;
      continue;
    }
    t.faults[r.fault] ??= { injected: 0, missed: 0, byInstant: {}, outcomes: {}, proceedMs: [] };
    const f = t.faults[r.fault];
    if (r.missed) {
      f.missed++;
      continue;
    }
    f.injected++;
    f.byInstant[r.instant] = (f.byInstant[r.instant] ?? 0) + 1;
    f.outcomes[r.outcome] = (f.outcomes[r.outcome] ?? 0) + 1;
    if (r.proceedMs !== null) f.proceedMs.push(r.proceedMs);
  }
  for (const t of Object.values(perTarget)) {
    for (const f of Object.values(t.faults)) {
      f.proceed = {
        measured: f.proceedMs.length,
        medianMs: round1(percentile(f.proceedMs, 50)),
        p99Ms: round1(percentile(f.proceedMs, 99)),
        maxMs: round1(f.proceedMs.length ? Math.max(...f.proceedMs) : null),
      };
      delete f.proceedMs;
    }
  }
  const anomalies = rounds
    .filter((r) => r.anomalies.length > 0)
    .map((r) => ({
      id: r.id,
      target: r.target,
      type: r.type,
      fault: r.fault ?? null,
      instant: r.instant ?? null,
      anomalies: r.anomalies,
      kept: r.kept,
    }));
  return { meta, perTarget, anomalies };
}

export function writeResults(results, jsonFile, mdFile) {
  writeFileSync(jsonFile, `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(mdFile, markdown(results));
}

function markdown({ meta, perTarget, anomalies }) {
  const lines = [
    `# Soak results${meta.quick ? ' (quick run)' : ''}`,
    '',
    `${meta.date} · seed **${meta.seed}** · ${meta.machine.cpu} ×${meta.machine.cores}, ${meta.machine.memoryGiB} GiB, ${meta.machine.os}, Node ${meta.machine.node} · lockstep ${meta.commit} · ${meta.durationSeconds} s`,
    '',
    `Replay: \`npm run soak -- ${meta.argv}\``,
    '',
    `**Anomalies: ${anomalies.length}**`,
    '',
    '## Races',
    '',
    '| database | rounds | processes in all | rounds with a migration failing on purpose |',
    '|---|---|---|---|',
  ];
  for (const [target, t] of Object.entries(perTarget)) {
    lines.push(`| ${LABEL[target]} | ${t.races} | ${t.processes} | ${t.racesWithFailure} |`);
  }
  lines.push(
    '',
    '## Faults',
    '',
    "Time until the next runner proceeds: from the fault to the waiting runner's `lock-acquired` event",
    '(measured when the victim held the lock and the other runner was already waiting).',
    '',
    '| database | fault | injected | at which instant | what the next runner did | proceeds after: median / p99 / max (n) |',
    '|---|---|---|---|---|---|',
  );
  for (const [target, t] of Object.entries(perTarget)) {
    for (const [kind, f] of Object.entries(t.faults)) {
      const instants = Object.entries(f.byInstant)
        .map(([k, n]) => `${k} ${n}`)
        .join('; ');
      const outcomes = Object.entries(f.outcomes)
        .map(([k, n]) => `${k} ${n}`)
        .join('; ');
      const p = f.proceed;
      const ms = (v) => (v === null ? '–' : `${v} ms`);
      lines.push(
        `| ${LABEL[target]} | ${kind} | ${f.injected}${f.missed ? ` (+${f.missed} missed)` : ''} | ${instants} | ${outcomes} | ${ms(p.medianMs)} / ${ms(p.p99Ms)} / ${ms(p.maxMs)} (${p.measured}) |`,
      );
    }
  }
  lines.push('', '## Anomalies', '');
  if (anomalies.length === 0) lines.push('None.');
  for (const a of anomalies) {
    lines.push(
      `- **${a.id}** (${LABEL[a.target]}, ${a.type}${a.fault ? ` ${a.fault} at ${a.instant}` : ''}): logs in \`soak/anomalies/${a.id}/\`${a.kept ? `, database kept: ${a.kept}` : ''}`,
    );
    for (const text of a.anomalies) lines.push(`  - ${text}`);
  }
  lines.push(
    '',
    '## Servers',
    '',
    ...Object.entries(meta.servers).map(([k, v]) => `- ${LABEL[k]}: ${v}`),
    '',
    '"missed": the victim finished before the chosen instant came; not counted as a fault.',
    '',
  );
  return lines.join('\n');
}

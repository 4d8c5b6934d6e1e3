/**
 * The status page: one HTML file, its script and its style, served by the handler itself — no
 * build step, no external assets (the machines that run it may be offline). The script builds
 * every element with textContent: names, errors and statements are never parsed as HTML.
 */

export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>lockstep</title>
<link rel="stylesheet" href="app.css">
</head>
<body>
<header>
  <h1>lockstep</h1>
  <p id="target"></p>
  <form id="auth" autocomplete="off">
    <label for="token">Token</label>
    <input id="token" type="password" placeholder="needed for actions" spellcheck="false">
    <span id="mode"></span>
  </form>
</header>
<main>
  <p id="message" role="status" aria-live="polite"></p>
  <section aria-labelledby="async-title">
    <h2 id="async-title">Long-running migrations</h2>
    <p id="async-error" class="problem" hidden></p>
    <table id="async">
      <thead><tr><th>Name</th><th>State</th><th>Progress</th><th>Operation</th><th>Worker</th><th>Actions</th></tr></thead>
      <tbody></tbody>
    </table>
  </section>
  <section aria-labelledby="migrations-title">
    <h2 id="migrations-title">Migrations</h2>
    <p id="lock"></p>
    <p id="migrations-error" class="problem" hidden></p>
    <table id="migrations">
      <thead><tr><th>Version</th><th>Name</th><th>Status</th><th>Applied at</th><th>By</th><th>Took</th></tr></thead>
      <tbody></tbody>
    </table>
  </section>
</main>
<footer>Refreshed every second. <span id="updated"></span></footer>
<script src="app.js"></script>
</body>
</html>
`;

export const PAGE_CSS = `
:root { color-scheme: light dark; --ok: #1a7f37; --run: #0969da; --bad: #cf222e; --warn: #9a6700; --dim: #6e7781; }
body { font: 14px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 1200px; padding: 0 16px 32px; }
header { display: flex; flex-wrap: wrap; align-items: baseline; gap: 8px 24px; border-bottom: 1px solid #8884; }
h1 { font-size: 20px; margin: 12px 0; }
h2 { font-size: 16px; margin: 24px 0 8px; }
#target { color: var(--dim); margin: 0; flex: 1; font-family: ui-monospace, monospace; }
#auth { display: flex; gap: 8px; align-items: center; }
#auth input { width: 16em; }
#mode { color: var(--dim); }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid #8883; vertical-align: top; }
th { font-weight: 600; color: var(--dim); }
td.name small { display: block; color: var(--dim); }
.tag { display: inline-block; padding: 0 8px; border-radius: 10px; font-size: 12px; font-weight: 600; border: 1px solid currentColor; white-space: nowrap; }
.tag.completed, .tag.applied { color: var(--ok); }
.tag.running, .tag.starting, .tag.rolling_back, .tag.stopping, .tag.queued { color: var(--run); }
.tag.errored, .tag.failed, .tag.failed_at_startup, .tag.dead, .tag.changed, .tag.missing { color: var(--bad); }
.tag.pending, .tag.not_started, .tag.rolled_back, .tag.waiting { color: var(--dim); }
progress { width: 140px; height: 12px; vertical-align: middle; }
.percent { display: inline-block; min-width: 4em; margin-left: 6px; font-variant-numeric: tabular-nums; }
button { margin: 0 4px 4px 0; cursor: pointer; }
button.danger { color: var(--bad); }
.params { display: flex; flex-wrap: wrap; gap: 4px; margin-bottom: 4px; }
.params label { font-size: 12px; color: var(--dim); }
.params input { width: 7em; }
tr.details td { border-bottom: 1px solid #8883; padding-top: 0; }
details summary { cursor: pointer; color: var(--dim); }
details ul { margin: 4px 0; padding-left: 20px; }
details li { margin: 2px 0; }
pre { white-space: pre-wrap; margin: 4px 0; font-size: 12px; }
.problem, #message.bad { color: var(--bad); }
#message { min-height: 1.45em; }
footer { margin-top: 24px; color: var(--dim); }
`;

export const PAGE_JS = `'use strict';
(function () {
  var $ = function (id) { return document.getElementById(id); };
  var LABELS = { trigger: 'Run', stop: 'Stop', 'force-stop': 'Force stop', resume: 'Resume', rollback: 'Rollback' };
  var CONFIRM = {
    'force-stop': 'Cancel the running statement on the server and stop?',
    rollback: 'Run the rollback SQL of every operation done, newest first?'
  };
  var rows = new Map();
  var openDetails = new Set();
  var inFlight = false;

  var token = $('token');
  token.value = sessionStorage.getItem('lockstep-token') || '';
  token.addEventListener('input', function () { sessionStorage.setItem('lockstep-token', token.value); });
  $('auth').addEventListener('submit', function (e) { e.preventDefault(); });

  function el(tag, props) {
    var node = document.createElement(tag);
    var keys = Object.keys(props || {});
    for (var i = 0; i < keys.length; i++) {
      var k = keys[i];
      if (k === 'class') node.className = props[k];
      else if (k.indexOf('data-') === 0 || k.indexOf('aria-') === 0) node.setAttribute(k, props[k]);
      else node[k] = props[k];
    }
    for (var j = 2; j < arguments.length; j++) {
      var child = arguments[j];
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function tag(text, kind) { return el('span', { class: 'tag ' + (kind || text), 'data-state': text }, text.replace(/_/g, ' ')); }

  function say(text, bad) {
    var m = $('message');
    m.textContent = text;
    m.className = bad ? 'bad' : '';
  }

  function errorText(body) {
    if (!body) return 'no answer';
    return body.message || body.error || JSON.stringify(body);
  }

  function refresh() {
    return fetch('api/status', { headers: { accept: 'application/json' }, cache: 'no-store' })
      .then(function (r) { return r.json().then(function (body) { return { ok: r.ok, body: body }; }); })
      .then(function (r) {
        if (!r.ok) throw new Error(errorText(r.body));
        render(r.body);
        $('updated').textContent = 'Last: ' + new Date().toLocaleTimeString();
      })
      .catch(function (e) { say('Cannot load the status: ' + e.message, true); });
  }

  function render(s) {
    $('target').textContent = s.target;
    $('mode').textContent = s.mutations ? '' : 'read-only: this server has no token';
    $('auth').querySelector('input').hidden = !s.mutations;
    $('auth').querySelector('label').hidden = !s.mutations;
    var h = s.lockHolder;
    $('lock').textContent = 'Migration lock: ' + (h ? 'held by ' + h.who + (h.since ? ' since ' + h.since : '') + (h.detail ? ' (' + h.detail + ')' : '') : 'free');
    problem('async-error', s.asyncError);
    problem('migrations-error', s.migrationsError);
    renderAsync(s.async, s.mutations);
    renderMigrations(s.migrations || []);
  }

  function problem(id, error) {
    $(id).hidden = !error;
    $(id).textContent = error ? errorText(error) : '';
  }

  function renderAsync(data, mutations) {
    var body = $('async').querySelector('tbody');
    var runs = data ? data.runs : [];
    var errors = data ? data.errors : [];
    var seen = new Set();
    var fragment = document.createDocumentFragment();
    if (runs.length === 0) {
      fragment.append(el('tr', {}, el('td', { colSpan: 6 }, 'No long-running migrations (lockstep async new <name> writes one).')));
    }
    runs.forEach(function (run) {
      seen.add(run.name);
      var mine = errors.filter(function (e) { return e.name === run.name; });
      var key = JSON.stringify([run, mine, mutations]);
      var cached = rows.get(run.name);
      if (!cached || cached.key !== key) {
        cached = { key: key, nodes: asyncRows(run, mine, mutations) };
        rows.set(run.name, cached);
      }
      cached.nodes.forEach(function (n) { fragment.append(n); });
    });
    rows.forEach(function (_, name) { if (!seen.has(name)) rows.delete(name); });
    body.replaceChildren(fragment);
  }

  function asyncRows(run, errors, mutations) {
    var state = el('td', {}, tag(run.state));
    if (run.alive === false) state.append(' ', tag('worker dead', 'dead'));
    if (run.waitingForWorker) state.append(' ', tag('waiting for a worker', 'waiting'));
    var progress = el('td', {},
      el('progress', { max: 100, value: run.progress, 'aria-label': run.name + ' progress' }),
      el('span', { class: 'percent' }, run.state === 'not_started' ? '' : run.progress + '%'));
    var op = run.operation;
    var operation = el('td', {}, op && run.state !== 'not_started'
      ? (run.direction === 'rollback' ? 'undoing ' : '') + op.number + ' of ' + op.count + (op.kind === 'batched' ? ' (batched' + (op.batch ? ', key ' + op.batch.cursor + ' of ' + op.batch.max : '') + ')' : '')
      : '');
    var worker = el('td', {}, run.worker || '');
    var actions = el('td', { class: 'actions' });
    if (mutations) {
      run.actions.forEach(function (action) {
        if (action === 'trigger') actions.append(paramInputs(run));
        actions.append(el('button', {
          type: 'button',
          class: action === 'rollback' || action === 'force-stop' ? 'danger' : '',
          'data-action': action,
          'data-name': run.name,
          onclick: function () { act(run.name, action, actions); }
        }, LABELS[action]));
      });
    }
    var main = el('tr', { 'data-run': run.name },
      el('td', { class: 'name' }, run.name, run.description ? el('small', {}, run.description) : null),
      state, progress, operation, worker, actions);
    var details = detailsRow(run, errors);
    return details ? [main, details] : [main];
  }

  function paramInputs(run) {
    var box = el('div', { class: 'params' });
    Object.keys(run.declaredParameters || {}).forEach(function (name) {
      var p = run.declaredParameters[name];
      var value = run.parameters && run.parameters[name] !== undefined ? run.parameters[name] : p['default'];
      box.append(el('label', { title: p.description || '' }, name + ' ',
        el('input', { value: String(value), 'data-param': name, 'data-number': typeof p['default'] === 'number' ? '1' : '' })));
    });
    return box.childElementCount > 0 ? box : '';
  }

  function detailsRow(run, errors) {
    var lines = [];
    if (run.error) lines.push(el('p', { class: 'problem' }, run.error));
    if (run.note) lines.push(el('p', {}, run.note));
    if (run.definitionProblem) lines.push(el('p', { class: 'problem' }, run.definitionProblem));
    if (run.operation && run.state !== 'not_started') lines.push(el('pre', {}, run.operation.statement));
    if (errors.length > 0) {
      var list = el('ul');
      errors.forEach(function (e) {
        list.append(el('li', {}, e.at + ' — attempt ' + e.attempt + (e.operation ? ', operation ' + e.operation : '') +
          (e.direction === 'rollback' ? ' (rollback)' : '') + ': ' + e.message, e.statement ? el('pre', {}, e.statement) : null));
      });
      lines.push(list);
    }
    if (lines.length === 0) return null;
    var summary = errors.length > 0 ? 'Errors (' + errors.length + ') and details' : 'Details';
    var d = el('details', { open: openDetails.has(run.name) }, el('summary', {}, summary));
    d.addEventListener('toggle', function () { if (d.open) openDetails.add(run.name); else openDetails.delete(run.name); });
    lines.forEach(function (l) { d.append(l); });
    return el('tr', { class: 'details', 'data-details': run.name }, el('td', { colSpan: 6 }, d));
  }

  function act(name, action, cell) {
    if (inFlight) return;
    if (CONFIRM[action] && !window.confirm(name + ': ' + CONFIRM[action])) return;
    var path = action === 'force-stop' ? 'stop' : action;
    var body = action === 'force-stop' ? { force: true } : {};
    if (action === 'trigger') {
      var parameters = {};
      cell.querySelectorAll('input[data-param]').forEach(function (input) {
        parameters[input.dataset.param] = input.dataset.number && input.value.trim() !== '' && !isNaN(Number(input.value)) ? Number(input.value) : input.value;
      });
      if (Object.keys(parameters).length > 0) body.parameters = parameters;
    }
    inFlight = true;
    say(name + ': ' + LABELS[action].toLowerCase() + '…');
    fetch('api/async/' + encodeURIComponent(name) + '/' + path, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer ' + token.value },
      body: JSON.stringify(body)
    })
      .then(function (r) { return r.json().then(function (b) { return { ok: r.ok, status: r.status, body: b }; }); })
      .then(function (r) {
        if (!r.ok) say(name + ': ' + errorText(r.body) + ' (' + r.status + ')', true);
        else say(name + ': ' + r.body.previous + ' → ' + r.body.state + (r.body.note ? ' (' + r.body.note + ')' : ''));
      })
      .catch(function (e) { say(name + ': ' + e.message, true); })
      .then(function () { inFlight = false; return refresh(); });
  }

  function renderMigrations(list) {
    var body = $('migrations').querySelector('tbody');
    var fragment = document.createDocumentFragment();
    if (list.length === 0) fragment.append(el('tr', {}, el('td', { colSpan: 6 }, 'No migrations.')));
    list.forEach(function (m) {
      var row = m.row;
      var applied = row && row.state === 'applied';
      fragment.append(el('tr', { 'data-version': m.version },
        el('td', {}, m.version), el('td', {}, m.name), el('td', {}, tag(m.status)),
        el('td', {}, applied ? row.finishedAt || '' : ''), el('td', {}, row && row.state !== 'rolled_back' ? row.appliedBy : ''),
        el('td', {}, applied && row.durationMs !== null ? row.durationMs + ' ms' : '')));
      if (row && row.error && !applied) {
        fragment.append(el('tr', { class: 'details' }, el('td', { colSpan: 6 }, el('details', {}, el('summary', {}, 'Error'), el('pre', {}, row.error)))));
      }
    });
    body.replaceChildren(fragment);
  }

  refresh();
  setInterval(function () { if (!document.hidden) refresh(); }, 1000);
})();
`;

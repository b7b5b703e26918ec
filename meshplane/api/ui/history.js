// The History section: the change log one row per revision, a revision's diff, and rollback for
// editors and admins. Data -> view decisions live in view.js; this module fetches, builds HTML
// and wires the section's events, with the page's helpers (app.js) handed in.

import {
  absoluteTime,
  canRollBack,
  changeSummary,
  esc,
  foldDiff,
  historyRows,
  lineDiff,
  mergeHistory,
  revisionFromHash,
  rollbackBody,
  rollbackPlan,
  singularKind,
  specLines,
} from "./view.js";

const PAGE = 100; // change log items per page (a revision is never split across pages)
const OP_PILL = { created: "ok", configured: "warn", deleted: "bad", changed: "warn" };

/**
 * The History section, given the page's helpers: `api` (the API's prefix), `call(method, path,
 * body)`, `put(id, html)`, `pill(cls, text, title)`, `when(time, now)`, `role()` (the signed-in
 * token's role) and `refresh()` (poll everything now). Returns {poll, render, reset}.
 */
export function historySection({ api, call, put, pill, when, role, refresh }) {
  // The list shown and the revision it was read at; the selected revision, its diff and the
  // rollback to it: {step: "checking"|"preview"|"writing"|"done"|"failed", answer, error}.
  let list = { items: [], nextBefore: null, extended: false, revision: null, error: null };
  let selected = revisionFromHash(window.location.hash);
  let diff = null; // {revision, answer} or {revision, error}
  let rollback = null;
  let loading = false;
  let revealed = selected === null; // opened at a revision (#revision=N): scroll there once shown

  function reset() {
    list = { items: [], nextBefore: null, extended: false, revision: null, error: null };
    diff = null;
    rollback = null;
  }

  /** Read the newest page when the mesh's revision moved, and the selected diff; then render. */
  async function poll(revision) {
    if (revision === undefined) return;
    if (revision !== list.revision) {
      try {
        const page = await call("GET", `${api}/changes?limit=${PAGE}`);
        list = { ...mergeHistory(list, page), revision, error: null };
      } catch (error) {
        list.error = error.message;
      }
    }
    await loadDiff();
    render(Date.now());
    if (!revealed && diff !== null) {
      revealed = true;
      document.getElementById("history-section").scrollIntoView({ block: "start" });
    }
  }

  async function loadDiff() {
    const revision = selected;
    if (revision === null || diff?.revision === revision) return;
    const from = Math.max(revision - 1, 0);
    try {
      const answer = await call("GET", `${api}/diff?from=${from}&to=${revision}`);
      if (selected === revision) diff = { revision, answer };
    } catch (error) {
      if (selected === revision) diff = { revision, error: error.message };
    }
  }

  async function more(button) {
    if (loading || list.nextBefore === null) return;
    loading = true;
    button.disabled = true;
    try {
      const page = await call("GET", `${api}/changes?limit=${PAGE}&before=${list.nextBefore}`);
      list = { ...list, items: [...list.items, ...page.items], nextBefore: page.next_before, extended: true };
    } catch (error) {
      list.error = error.message;
    } finally {
      loading = false;
      button.disabled = false;
    }
    render(Date.now());
  }

  async function select(revision) {
    if (revision === selected && diff) return;
    selected = revision;
    diff = null;
    rollback = null;
    if (!role()) return; // signed out: the first poll after signing in reads it
    render(Date.now());
    await loadDiff();
    render(Date.now());
    document.getElementById("history-detail").scrollIntoView({ block: "nearest" });
  }

  // ---- rollback --------------------------------------------------------------------------------

  async function checkRollback(revision) {
    rollback = { revision, step: "checking" };
    render(Date.now());
    try {
      const answer = await call("POST", `${api}/rollback?dry_run=true`, rollbackBody(revision));
      rollback = { revision, step: "preview", answer };
    } catch (error) {
      rollback = { revision, step: "failed", error: `The dry run of a rollback to revision ${revision} failed: ${error.message}` };
    }
    render(Date.now());
  }

  async function confirmRollback(revision) {
    rollback = { ...rollback, step: "writing" };
    render(Date.now());
    try {
      const answer = await call("POST", `${api}/rollback`, rollbackBody(revision));
      rollback = { revision, step: "done", answer };
    } catch (error) {
      rollback = { revision, step: "failed", error: `Rolling back to revision ${revision} failed: ${error.message}` };
    }
    render(Date.now());
    await refresh();
  }

  // ---- rendering -------------------------------------------------------------------------------

  function render(now) {
    put("history", listHtml(now));
    put("history-detail", detailHtml());
  }

  function listHtml(now) {
    const rows = historyRows(list.items);
    if (!rows.length) {
      if (list.error) return `<p class="empty error">Could not load the history: ${esc(list.error)}</p>`;
      return list.revision === null ? '<p class="empty">loading&hellip;</p>' : '<p class="empty">No changes recorded yet.</p>';
    }
    const body = rows
      .map((r) => {
        const all = r.changes.map((c) => `${c.what} ${c.kind}/${c.name}`).join("\n");
        return `<tr data-revision="${esc(r.revision)}"${r.revision === selected ? ' class="chosen"' : ""}>
          <td class="num"><a href="#revision=${esc(r.revision)}">${esc(r.revision)}</a></td>
          <td>${when(r.at, now)}</td>
          <td>${r.by === "auto" ? pill("auto", "auto", "registered by a connecting sidecar") : esc(r.by ?? "-")}</td>
          <td class="what" title="${esc(all)}">${esc(changeSummary(r.changes))}</td>
          <td class="message">${r.message ? esc(r.message) : '<span class="muted">-</span>'}</td></tr>`;
      })
      .join("");
    const error = list.error ? `<p class="empty error">Could not load the history: ${esc(list.error)}</p>` : "";
    const older =
      list.nextBefore !== null
        ? `<p><button type="button" data-history-more>Older revisions</button></p>`
        : "";
    return `${error}<div class="history-list"><table><thead><tr><th class="num">Revision</th><th>When</th>
      <th>By</th><th>What</th><th>Message</th></tr></thead><tbody>${body}</tbody></table></div>${older}`;
  }

  function detailHtml() {
    if (selected === null) return '<p class="empty">Select a revision to see what it changed.</p>';
    const row = historyRows(list.items.filter((i) => i.revision === selected))[0];
    const facts = row
      ? [
          row.by ? `by ${esc(row.by)}` : "",
          row.at ? esc(absoluteTime(row.at)) : "",
          row.message ? `&ldquo;${esc(row.message)}&rdquo;` : "",
        ].filter(Boolean)
      : [];
    const button = canRollBack(role())
      ? `<button type="button" class="action" data-rollback="${esc(selected)}"
          title="Make every resource what it was right after revision ${esc(selected)}, as a new revision; shows what would change first"
          ${rollback?.step === "checking" || rollback?.step === "writing" ? "disabled" : ""}>Roll back to this revision</button>`
      : "";
    return `<div class="history-detail">
      <h3>Revision ${esc(selected)} <span class="hint">${facts.join(" · ")}</span>${button}</h3>
      ${rollbackHtml()}
      ${diffHtml()}
    </div>`;
  }

  function diffHtml() {
    if (diff === null) return '<p class="muted">loading the diff&hellip;</p>';
    if (diff.error) return `<div class="banner error">Could not load the diff: ${esc(diff.error)}</div>`;
    const { from_revision: from, to_revision: to, changes } = diff.answer;
    if (!changes.length) return `<p class="empty">Nothing differs between revision ${esc(from)} and ${esc(to)}.</p>`;
    const blocks = changes.map((c) => {
      const lines = foldDiff(lineDiff(specLines(c.before?.spec), specLines(c.after?.spec)));
      const source =
        c.before && c.after && c.before.source !== c.after.source
          ? ` <span class="muted small">source ${esc(c.before.source)} &rarr; ${esc(c.after.source)}</span>`
          : "";
      const text = lines
        .map((l) => {
          if (l.op === "fold") return `<div class="diff-line fold">&hellip; ${esc(l.count)} unchanged lines</div>`;
          const cls = { " ": "same", "-": "del", "+": "add" }[l.op];
          return `<div class="diff-line ${cls}"><span class="sign">${esc(l.op)}</span>${esc(l.text)}</div>`;
        })
        .join("");
      return `<div class="diff-resource" data-resource="${esc(c.kind)}/${esc(c.name)}">
        <div class="diff-head">${pill(OP_PILL[c.op] ?? "idle", c.op)} <span class="name mono">${esc(singularKind(c.kind))}/${esc(c.name)}</span>${source}</div>
        <div class="diff">${text}</div></div>`;
    });
    return `<p class="muted small">From revision ${esc(from)} to ${esc(to)}: each resource's spec before
      (<span class="bad-text">removed lines</span>) and after (<span class="ok-text">added lines</span>).</p>
      ${blocks.join("")}`;
  }

  function rollbackHtml() {
    if (!rollback || rollback.revision !== selected) return "";
    const n = esc(rollback.revision);
    if (rollback.step === "checking") return '<p class="muted">checking what a rollback would change&hellip;</p>';
    if (rollback.step === "failed") return `<div class="banner error">${esc(rollback.error)}</div>`;
    const plan = rollbackPlan(rollback.answer);
    if (rollback.step === "done") {
      const made = esc(rollback.answer.revision);
      return plan.documents.length
        ? `<div class="banner ok">Rolled back to revision ${n}: ${plan.documents.length} resource(s) changed
            at the new revision <a href="#revision=${made}">${made}</a>.</div>`
        : `<div class="banner ok">Nothing to roll back: the mesh already is what it was at revision ${n}.</div>`;
    }
    const cancel = '<button type="button" data-rollback-cancel>Cancel</button>';
    if (!plan.documents.length) {
      return `<div class="rollback-preview"><p>Nothing to roll back: the mesh already is what it was
        at revision ${n}.</p>${cancel}</div>`;
    }
    const rows = plan.documents
      .map((d) => `<tr><td class="mono">${esc(d.kind)}/${esc(d.name)}</td><td>${pill(OP_PILL[d.outcome] ?? "idle", d.outcome)}</td></tr>`)
      .join("");
    const proxies = plan.proxies.length
      ? `<ul>${plan.proxies
          .map((p) => `<li>${esc(p.group)} <span class="muted">(${esc(p.nodes.length)} connected)</span>: ${esc(p.text)}</li>`)
          .join("")}</ul>`
      : '<p class="muted small">No connected proxy would receive a change.</p>';
    const writing = rollback.step === "writing";
    return `<div class="rollback-preview">
      <p><strong>A rollback to revision ${n} would change ${plan.documents.length} resource(s):
        ${esc(plan.counts)}</strong> <span class="muted">(dry run: nothing is written yet)</span></p>
      <div class="plan"><table><thead><tr><th>Resource</th><th>Outcome</th></tr></thead><tbody>${rows}</tbody></table></div>
      <h4>Proxies</h4>${proxies}
      <p class="muted small">${esc(rollback.answer.not_rolled_back)}.</p>
      <button type="button" class="primary" data-rollback-confirm="${n}"${writing ? " disabled" : ""}>Roll back to revision ${n}</button>
      ${cancel}</div>`;
  }

  // ---- wiring ----------------------------------------------------------------------------------

  window.addEventListener("hashchange", () => {
    const revision = revisionFromHash(window.location.hash);
    if (revision !== null) select(revision);
  });
  document.getElementById("history-section").addEventListener("click", (event) => {
    const target = event.target;
    if (target.closest("button[data-history-more]")) {
      more(target.closest("button"));
    } else if (target.closest("button[data-rollback]")) {
      const button = target.closest("button");
      if (!button.disabled) checkRollback(Number(button.dataset.rollback));
    } else if (target.closest("button[data-rollback-confirm]")) {
      const button = target.closest("button");
      if (!button.disabled) confirmRollback(Number(button.dataset.rollbackConfirm));
    } else if (target.closest("button[data-rollback-cancel]")) {
      rollback = null;
      render(Date.now());
    } else if (!target.closest("a")) {
      const row = target.closest("tr[data-revision]");
      if (row) window.location.hash = `revision=${row.dataset.revision}`;
    }
  });
  return { poll, render, reset };
}

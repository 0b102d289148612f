/** Admin page: server-rendered, cookie session from ?token=, CSRF-protected forms (the /dagster/* proxy: dagster_proxy.ts). */
import { Hono, type Context } from "hono";
import { deleteCookie } from "hono/cookie";
import { html, raw } from "hono/html";
import { secureHeaders } from "hono/secure-headers";
import type { HtmlEscapedString } from "hono/utils/html";
import { csrfToken, revokeSession, SESSION_COOKIE, sessionCookie, sessionWithRole, safeEqual } from "../auth";
import type { AppEnv } from "../env";
import { ApiError, unauthorized } from "../errors";
import { background } from "../http";
import { ALERTING, getRun, listEvents, listRuns, listSources, setSourceEnabled, TERMINAL, type RunRow } from "../ledger";
import { reloadLocation } from "../dagster";
import { readOnly, tokenRole, type Role } from "../roles";
import { withLoadErrors } from "../load_errors";
import { retryRun, startRun } from "../runs";
import { tableKeys } from "../source_types";
import { webhookSection } from "./admin_webhooks";

export const admin = new Hono<AppEnv>();

// The admin pages run no script, load nothing from elsewhere, post only to themselves and are never framed.
const adminHeaders = secureHeaders({
  contentSecurityPolicy: {
    defaultSrc: ["'none'"],
    styleSrc: ["'unsafe-inline'"],
    formAction: ["'self'"],
    frameAncestors: ["'none'"],
    baseUri: ["'none'"],
  },
  xFrameOptions: "DENY",
  referrerPolicy: "no-referrer",
});
admin.use("/admin", adminHeaders);
admin.use("/admin/*", adminHeaders);

const STYLE = `body{font:14px system-ui,sans-serif;margin:1.5rem;color:#222}table{border-collapse:collapse;margin:.5rem 0 1.5rem}
td,th{border-bottom:1px solid #ddd;padding:.3rem .6rem;text-align:left;vertical-align:top}th{background:#f4f4f4}
form{display:inline}button{cursor:pointer}.s-succeeded{color:#176c2e}.s-failed,.s-dead_lettered{color:#b3261e}
.s-running,.s-launched,.s-launching{color:#1d4ed8}.load-error{color:#b3261e;max-width:50rem}.muted{color:#777}nav a{margin-right:1rem}`;

function page(title: string, body: HtmlEscapedString | Promise<HtmlEscapedString>, csrf: string, refreshSeconds?: number) {
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <title>${title} · dlt-orchestrator</title>
        ${refreshSeconds ? html`<meta http-equiv="refresh" content="${refreshSeconds}" />` : ""}
        <style>
          ${raw(STYLE)}
        </style>
      </head>
      <body>
        <nav>
          <a href="/admin">Sources and runs</a><a href="/dagster/">Dagster UI</a>
          <form method="post" action="/admin/logout">
            <input type="hidden" name="csrf" value="${csrf}" /><button>Sign out</button>
          </form>
        </nav>
        <h1>${title}</h1>
        ${body}
      </body>
    </html>`;
}

function status(value: string) {
  return html`<span class="s-${value}">${value}</span>`;
}

/** The Retry form of a failed (or dead-lettered) run; nothing for other runs or without `csrf` (read-only view). */
function retryForm(run: RunRow, csrf: string | null) {
  if (!ALERTING.has(run.status) || !csrf) return "";
  return html`<form method="post" action="/admin/runs/${encodeURIComponent(run.run_id)}/retry">
    <input type="hidden" name="csrf" value="${csrf}" /><button>Retry</button>
  </form>`;
}

/** Under a failed (or dead-lettered) status in the runs list: why, as the ledger recorded it, and Retry. */
function failure(run: RunRow, csrf: string | null) {
  if (!ALERTING.has(run.status)) return "";
  return html`${run.message ? html`<div class="load-error">${run.message}</div>` : ""}${retryForm(run, csrf)}`;
}

function runRow(run: RunRow, csrf: string | null) {
  return html`<tr>
    <td><a href="/admin/runs/${encodeURIComponent(run.run_id)}">${run.run_id}</a></td>
    <td>${run.source_id}</td>
    <td>${status(run.status)}${failure(run, csrf)}</td>
    <td>${run.trigger}</td>
    <td>${run.rows_loaded ?? ""}</td>
    <td>${run.created_at}</td>
    <td>${run.started_at ?? ""}</td>
    <td>${run.finished_at ?? ""}</td>
  </tr>`;
}

/** The session of a signed-in operator (or read-only viewer) and its role, or a 401. */
async function requireSession(c: Context<AppEnv>): Promise<{ session: string; role: Role }> {
  const signedIn = await sessionWithRole(c);
  if (!signedIn) throw unauthorized();
  return signedIn;
}

admin.get("/admin", async (c) => {
  const token = c.req.query("token");
  if (token !== undefined) {
    // Exchange the token for a cookie and drop it from the URL (history, logs, referrers).
    // The read-only token (DLT_READONLY_TOKEN) opens a read-only session: the page without its forms.
    const role = await tokenRole(c.env, token);
    if (!role) throw unauthorized();
    c.header("Set-Cookie", await sessionCookie(c.env, Date.now(), role), { append: true });
    return c.redirect("/admin", 303);
  }
  const { session, role } = await requireSession(c);
  const csrf = await csrfToken(c.env, session);
  // The forms that change state carry a CSRF token; the read-only view has none of them.
  const actions = role === "operator" ? csrf : null;
  const [sources, runs, webhooks] = await Promise.all([
    listSources(c.env.DB).then((all) => withLoadErrors(c.env.DB, all)),
    listRuns(c.env.DB, { limit: 50 }),
    webhookSection(c.env.DB),
  ]);
  // Live status while something is in flight; a quiet page refreshes rarely.
  const refreshSeconds = runs.runs.some((run) => !TERMINAL.has(run.status)) ? 5 : 30;
  const body = html`
    <h2>Sources</h2>
    <table>
      <tr><th>source</th><th>enabled</th><th>schedule</th><th>last run</th><th></th></tr>
      ${sources.map(
        (s) => html`<tr>
          <td>${s.source_id}<div class="muted">${s.definition.description ?? ""}</div>
            <div class="muted">${s.definition.source_type} &rarr; ${tableKeys(s.definition).map((key) => key.join(".")).join(", ")}</div>
            ${s.load_error
              ? html`<div class="load-error">Dagster could not load this definition: ${s.load_error.message}</div>`
              : ""}</td>
          <td>${s.enabled ? "yes" : "no"}</td>
          <td>${s.definition.schedule ?? ""}</td>
          <td>${s.last_run
            ? html`<a href="/admin/runs/${encodeURIComponent(s.last_run.run_id)}">${s.last_run.created_at}</a>
                ${status(s.last_run.status)}`
            : ""}</td>
          <td>${actions ? html`
            <form method="post" action="/admin/sources/${encodeURIComponent(s.source_id)}/runs">
              <input type="hidden" name="csrf" value="${csrf}" /><button ${s.enabled ? "" : "disabled"}>Run</button>
            </form>
            <form method="post" action="/admin/sources/${encodeURIComponent(s.source_id)}/${s.enabled ? "disable" : "enable"}">
              <input type="hidden" name="csrf" value="${csrf}" /><button>${s.enabled ? "Disable" : "Enable"}</button>
            </form>` : ""}
          </td>
        </tr>`,
      )}
    </table>
    ${webhooks}
    <h2>Recent runs</h2>
    <table>
      <tr><th>run</th><th>source</th><th>status</th><th>trigger</th><th>rows</th><th>created</th><th>started</th><th>finished</th></tr>
      ${runs.runs.map((run) => runRow(run, actions))}
    </table>
    <p class="muted">Refreshes every ${refreshSeconds} seconds.</p>`;
  return c.html(page("dlt-orchestrator", body, csrf, refreshSeconds));
});

admin.get("/admin/runs/:run_id", async (c) => {
  const { session, role } = await requireSession(c);
  const run = await getRun(c.env.DB, c.req.param("run_id"));
  const events = await listEvents(c.env.DB, run.run_id);
  const terminal = TERMINAL.has(run.status);
  const csrf = await csrfToken(c.env, session);
  const body = html`
    <table>
      <tr><th>source</th><td>${run.source_id}</td></tr>
      <tr><th>status</th><td>${status(run.status)}${retryForm(run, role === "operator" ? csrf : null)}</td></tr>
      <tr><th>trigger</th><td>${run.trigger}</td></tr>
      <tr><th>dagster run</th><td>${run.dagster_run_id
        ? html`<a href="/dagster/runs/${encodeURIComponent(run.dagster_run_id)}">${run.dagster_run_id}</a>`
        : ""}</td></tr>
      <tr><th>retry of</th><td>${run.retry_of
        ? html`<a href="/admin/runs/${encodeURIComponent(run.retry_of)}">${run.retry_of}</a>`
        : ""}</td></tr>
      <tr><th>request</th><td><code>${run.request}</code></td></tr>
      <tr><th>rows loaded</th><td>${run.rows_loaded ?? ""}</td></tr>
      <tr><th>message</th><td>${run.message ?? ""}</td></tr>
    </table>
    <h2>Events</h2>
    <table>
      <tr><th>at</th><th>status</th><th>message</th><th>data</th></tr>
      ${events.map(
        (e) => html`<tr><td>${e.at}</td><td>${status(e.status)}</td><td>${e.message ?? ""}</td>
          <td><code>${e.data ? JSON.stringify(e.data) : ""}</code></td></tr>`,
      )}
    </table>`;
  return c.html(page(`Run ${run.run_id}`, body, csrf, terminal ? undefined : 5));
});

/**
 * A form post: a valid session and the CSRF token derived from it; the session. Forms that change state refuse
 * read-only sessions (403 read_only); sign-out (`anyRole`) takes them.
 */
async function requireForm(c: Context<AppEnv>, { anyRole = false } = {}): Promise<string> {
  const { session, role } = await requireSession(c);
  if (role !== "operator" && !anyRole) throw readOnly();
  const form = await c.req.parseBody();
  const sent = typeof form.csrf === "string" ? form.csrf : "";
  if (!sent || !(await safeEqual(sent, await csrfToken(c.env, session)))) {
    throw new ApiError(403, "csrf_failed", "missing or invalid CSRF token");
  }
  return session;
}

/**
 * Signs out: the session ends on the server (a copy of the cookie is refused from now on) and the cookie is
 * cleared. Every session at once ends by rotating ADMIN_SESSION_KEY (docs/worker.md).
 */
admin.post("/admin/logout", async (c) => {
  await revokeSession(c.env, await requireForm(c, { anyRole: true }));
  deleteCookie(c, SESSION_COOKIE, { path: "/", secure: true, httpOnly: true, sameSite: "Strict" });
  return c.html(
    html`<!doctype html>
      <html lang="en">
        <head><meta charset="utf-8" /><title>Signed out · dlt-orchestrator</title></head>
        <body><p>Signed out. Open <code>/admin?token=…</code> to sign in again.</p></body>
      </html>`,
  );
});

admin.post("/admin/sources/:source_id/runs", async (c) => {
  await requireForm(c);
  await startRun(c.env, { source_id: c.req.param("source_id"), trigger: "admin", request: {} });
  return c.redirect("/admin", 303);
});

/**
 * A new run of the failed run's source with its request, naming it in retry_of (as POST /runs/:id/retry). The
 * failed run's id is the Idempotency-Key, so a second click (or a resubmitted form) finds the same retry.
 */
admin.post("/admin/runs/:run_id/retry", async (c) => {
  await requireForm(c);
  const runId = c.req.param("run_id");
  await retryRun(c.env, runId, `admin-retry:${runId}`);
  return c.redirect("/admin", 303);
});

for (const [action, enabled] of [
  ["enable", true],
  ["disable", false],
] as const) {
  admin.post(`/admin/sources/:source_id/${action}`, async (c) => {
    await requireForm(c);
    const { changed } = await setSourceEnabled(c.env.DB, c.req.param("source_id"), enabled, "admin");
    if (changed) background(c, reloadLocation(c.env));
    return c.redirect("/admin", 303);
  });
}

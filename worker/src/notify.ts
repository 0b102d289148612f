/**
 * Alerts for runs that ended `failed` (stuck ones included) or `dead_lettered`: one Slack-compatible message per
 * run, POSTed to the ALERT_WEBHOOK_URL secret. The ledger owes the alert in the same batch as the status change
 * (a run_notifications row, see applyStatus); delivery happens after the write (waitUntil, or the cron, which
 * also retries failed deliveries), so the webhook never holds up or fails a status change.
 */
import type { Env } from "./env";
import { addEvent } from "./ledger";

/** Deliveries per alert before giving up; with the backoff below they span about half an hour. */
export const MAX_ATTEMPTS = 6;
/** Alerts older than this are not sent any more (e.g. when the webhook was configured after the fact). */
const SEND_WITHIN_MS = 24 * 3600_000;
/** How long one sender holds an alert; a crashed sender's alert is free again after it. */
const LEASE_MS = 60_000;
const TIMEOUT_MS = 10_000;
const PER_PASS = 20;

/** Wait before the next delivery after `attempts` failed ones: 1, 2, 4, 8, 16 minutes. */
export function alertRetryDelayMs(attempts: number): number {
  return Math.min(60_000 * 2 ** Math.max(0, attempts - 1), 3600_000);
}

export interface DueAlert {
  run_id: string;
  status: string;
  reason: string | null;
  attempts: number;
  source_id: string;
  trigger: string;
  dagster_run_id: string | null;
  partition_key: string | null;
}

export interface AlertPayload {
  text: string;
  blocks: unknown[];
}

/** Slack mrkdwn treats &, < and > as markup. */
function escapeMrkdwn(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** Secret values never leave in an alert, whatever a status message carried. */
function redact(text: string, env: Env): string {
  let out = text;
  for (const secret of [env.DLT_OPERATOR_TOKEN, env.DLT_READONLY_TOKEN, env.DLT_INTERNAL_TOKEN, env.ALERT_WEBHOOK_URL]) {
    if (secret && secret.length >= 8) out = out.split(secret).join("[redacted]");
  }
  return out;
}

/** The Worker's public origin from DLT_ORCHESTRATOR_URL, or null when it is not an http(s) URL. */
function publicBase(env: Env): string | null {
  const value = (env.DLT_ORCHESTRATOR_URL ?? "").trim().replace(/\/+$/, "");
  return /^https?:\/\/[^/\s]+/.test(value) ? value : null;
}

/** The message for one alert: `text` for any webhook, `blocks` for Slack. */
export function alertPayload(alert: DueAlert, env: Env): AlertPayload {
  const reason = redact((alert.reason ?? "no reason recorded").replace(/\s+/g, " ").slice(0, 500), env);
  const base = publicBase(env);
  const links: { label: string; url: string }[] = [];
  if (base) {
    links.push({ label: "admin page", url: `${base}/admin/runs/${encodeURIComponent(alert.run_id)}` });
    if (alert.dagster_run_id) {
      links.push({ label: "Dagster run", url: `${base}/dagster/runs/${encodeURIComponent(alert.dagster_run_id)}` });
    }
  }
  const partition = alert.partition_key ? ` (partition ${alert.partition_key})` : "";
  const headline = `Run ${alert.run_id} of source ${alert.source_id}${partition} ${alert.status}`;
  const text = [`${headline}: ${reason}`, ...links.map((l) => `${l.label}: ${l.url}`)].join("\n");
  const blocks: unknown[] = [
    {
      type: "section",
      text: { type: "mrkdwn", text: `*${escapeMrkdwn(headline)}*\n${escapeMrkdwn(reason)}` },
    },
    {
      type: "context",
      elements: [
        { type: "mrkdwn", text: `trigger: ${escapeMrkdwn(alert.trigger)}` },
        ...links.map((l) => ({ type: "mrkdwn", text: `<${l.url}|${l.label}>` })),
      ],
    },
  ];
  return { text, blocks };
}

async function dueAlerts(db: D1Database, nowMs: number, runId?: string): Promise<DueAlert[]> {
  const now = new Date(nowMs).toISOString();
  const since = new Date(nowMs - SEND_WITHIN_MS).toISOString();
  const { results } = await db
    .prepare(
      `SELECT n.run_id, n.status, n.reason, n.attempts, r.source_id, r.trigger, r.dagster_run_id, r.partition_key
       FROM run_notifications n JOIN runs r ON r.run_id = n.run_id
       WHERE n.sent_at IS NULL AND n.attempts < ? AND n.created_at >= ?
         AND (n.next_attempt_at IS NULL OR n.next_attempt_at <= ?) AND (? IS NULL OR n.run_id = ?)
       ORDER BY n.created_at LIMIT ?`,
    )
    .bind(MAX_ATTEMPTS, since, now, runId ?? null, runId ?? null, PER_PASS)
    .all<DueAlert>();
  return results;
}

/** Takes an alert for one delivery attempt; false when another sender took it first. */
async function claim(db: D1Database, alert: DueAlert, nowMs: number): Promise<boolean> {
  const update = await db
    .prepare(
      `UPDATE run_notifications SET attempts = attempts + 1, next_attempt_at = ?
       WHERE run_id = ? AND sent_at IS NULL AND attempts = ?`,
    )
    .bind(new Date(nowMs + LEASE_MS).toISOString(), alert.run_id, alert.attempts)
    .run();
  return update.meta.changes === 1;
}

/** POSTs the payload; the error it returns names the HTTP status or the error type, never the URL. */
async function post(url: string, payload: AlertPayload): Promise<string | null> {
  try {
    const response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(payload),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    await response.body?.cancel();
    return response.ok ? null : `HTTP ${response.status}`;
  } catch (err) {
    return err instanceof Error ? `${err.name} while posting` : "error while posting";
  }
}

/**
 * Sends the alerts that are due (all of them, or only `runId`'s), each at most once successfully. Without
 * ALERT_WEBHOOK_URL nothing is sent and nothing is counted as an attempt.
 */
export async function deliverNotifications(
  env: Env,
  options: { runId?: string; nowMs?: number } = {},
): Promise<{ sent: number; failed: number }> {
  const outcome = { sent: 0, failed: 0 };
  const url = (env.ALERT_WEBHOOK_URL ?? "").trim();
  if (!url) return outcome;
  const nowMs = options.nowMs ?? Date.now();
  try {
    for (const alert of await dueAlerts(env.DB, nowMs, options.runId)) {
      if (!(await claim(env.DB, alert, nowMs))) continue;
      const attempt = alert.attempts + 1;
      const error = await post(url, alertPayload(alert, env));
      const at = new Date().toISOString();
      if (!error) {
        await env.DB.prepare(
          "UPDATE run_notifications SET sent_at = ?, next_attempt_at = NULL, last_error = NULL WHERE run_id = ?",
        )
          .bind(at, alert.run_id)
          .run();
        await addEvent(env.DB, alert.run_id, "alert sent to the webhook", { attempt });
        outcome.sent += 1;
        continue;
      }
      outcome.failed += 1;
      const last = attempt >= MAX_ATTEMPTS;
      await env.DB.prepare("UPDATE run_notifications SET last_error = ?, next_attempt_at = ? WHERE run_id = ?")
        .bind(error, new Date(Date.now() + alertRetryDelayMs(attempt)).toISOString(), alert.run_id)
        .run();
      await addEvent(
        env.DB,
        alert.run_id,
        last
          ? `alert not delivered after ${attempt} attempts (${error}); giving up`
          : `alert delivery failed (${error}); attempt ${attempt} of ${MAX_ATTEMPTS}, retried by the cron`,
        { attempt },
      );
    }
  } catch (err) {
    // Delivery is best-effort around the ledger: log, the next cron tries again.
    outcome.failed += 1;
    console.error(`alert delivery: ${err instanceof Error ? err.message : String(err)}`);
  }
  return outcome;
}

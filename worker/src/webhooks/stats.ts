/** Per-source webhook figures for operators: accepted, refused by reason, loaded, waiting, last delivery. */
import { listSources } from "../ledger";
import { receivesDeliveries } from "../source_types";

export interface WebhookStats {
  source_id: string;
  enabled: boolean;
  accepted: number;
  waiting: number;
  loaded: number;
  refused: Record<string, number>;
  refused_total: number;
  last_delivery_at: string | null;
  last_refusal_at: string | null;
}

/** Refusals of ids that name no source are counted under this id. */
export const UNKNOWN_SOURCE_ID = "*";

interface StateRow {
  source_id: string;
  state: "waiting" | "loaded";
  n: number;
  last: string | null;
}

interface RefusalRow {
  source_id: string;
  reason: string;
  count: number;
  last_at: string;
}

function emptyStats(sourceId: string, enabled: boolean): WebhookStats {
  return {
    source_id: sourceId,
    enabled,
    accepted: 0,
    waiting: 0,
    loaded: 0,
    refused: {},
    refused_total: 0,
    last_delivery_at: null,
    last_refusal_at: null,
  };
}

async function figures(db: D1Database, sourceId?: string): Promise<{ states: StateRow[]; refusals: RefusalRow[] }> {
  const where = sourceId === undefined ? "" : "WHERE source_id = ?";
  const bind = sourceId === undefined ? [] : [sourceId];
  const [states, refusals] = await db.batch([
    db
      .prepare(
        `SELECT source_id, state, COUNT(*) AS n, MAX(received_at) AS last FROM webhook_deliveries ${where}
         GROUP BY source_id, state`,
      )
      .bind(...bind),
    db.prepare(`SELECT source_id, reason, count, last_at FROM webhook_refusals ${where}`).bind(...bind),
  ]);
  return { states: states.results as unknown as StateRow[], refusals: refusals.results as unknown as RefusalRow[] };
}

function apply(stats: Map<string, WebhookStats>, states: StateRow[], refusals: RefusalRow[]): void {
  for (const row of states) {
    const s = stats.get(row.source_id);
    if (!s) continue;
    s[row.state] += row.n;
    s.accepted += row.n;
    if (row.last && (!s.last_delivery_at || row.last > s.last_delivery_at)) s.last_delivery_at = row.last;
  }
  for (const row of refusals) {
    const s = stats.get(row.source_id);
    if (!s) continue;
    s.refused[row.reason] = row.count;
    s.refused_total += row.count;
    if (!s.last_refusal_at || row.last_at > s.last_refusal_at) s.last_refusal_at = row.last_at;
  }
}

/**
 * Figures of every webhook source (retired ones left out), and the refusals of requests naming no source.
 * A source that stopped being a webhook source keeps its rows but is not listed.
 */
export async function allWebhookStats(db: D1Database): Promise<{ sources: WebhookStats[]; unknown_source: number }> {
  const sources = (await listSources(db)).filter((s) => receivesDeliveries(s.definition));
  const stats = new Map(sources.map((s) => [s.source_id, emptyStats(s.source_id, s.enabled)]));
  const unknown = emptyStats(UNKNOWN_SOURCE_ID, false);
  stats.set(UNKNOWN_SOURCE_ID, unknown);
  const { states, refusals } = await figures(db);
  apply(stats, states, refusals);
  stats.delete(UNKNOWN_SOURCE_ID);
  return { sources: [...stats.values()], unknown_source: unknown.refused_total };
}

export async function webhookStats(db: D1Database, sourceId: string, enabled: boolean): Promise<WebhookStats> {
  const stats = new Map([[sourceId, emptyStats(sourceId, enabled)]]);
  const { states, refusals } = await figures(db, sourceId);
  apply(stats, states, refusals);
  return stats.get(sourceId) as WebhookStats;
}

/**
 * BigQuery's load-job quota: 1,500 load jobs per table per UTC day, failed ones included. A run reports the load
 * jobs it made per table with its final status (the run mirror; the status applies once, so they are counted
 * once); they are added up per destination table per UTC day of the run's end (D1 `load_jobs`). Counted for every
 * destination alike, so local runs show the same figures; only BigQuery tables are warned about. The run that
 * takes a table to LOAD_JOB_WARNING_SHARE of its source's budget gets a run event and an alert, once per table
 * per day (`load_job_warnings`). Dagster's webhook sensors read a source's figures to space their runs.
 */
import { BIGQUERY_LOAD_JOBS_PER_TABLE_PER_DAY, LOAD_JOB_WARNING_SHARE } from "./contract";
import { addEvent } from "./ledger";

export interface LoadJobsReport {
  destination: string;
  dataset: string;
  /** The source's budget of load jobs per table per day (its definition's, else the platform default). */
  budget: number;
  /** Load jobs the run made per table (completed and failed). */
  tables: Record<string, number>;
}

export interface LoadJobWarning {
  dataset: string;
  table: string;
  jobs: number;
  budget: number;
  message: string;
}

export interface TableLoadJobs {
  destination: string;
  dataset: string;
  table: string;
  /** The table's load jobs that day, every source's. */
  jobs: number;
  /** This source's share of them. */
  source_jobs: number;
  /** This source's runs that made load jobs into the table that day. */
  runs: number;
  last_run_at: string;
}

/** The UTC day (YYYY-MM-DD) of an ISO time: the day BigQuery's quota counts in. */
export function utcDay(at: string): string {
  return new Date(at).toISOString().slice(0, 10);
}

/** Whether `jobs` of `budget` is past the warning line. */
export function pastWarningLine(jobs: number, budget: number): boolean {
  return jobs >= budget * LOAD_JOB_WARNING_SHARE;
}

function warningText(report: LoadJobsReport, table: string, jobs: number, day: string): string {
  const share = Math.floor((jobs / report.budget) * 100);
  return (
    `load-job budget: ${report.dataset}.${table} has used ${jobs} of its ${report.budget} load jobs on ${day} ` +
    `(${share}%, UTC day); BigQuery refuses loads into it after ${BIGQUERY_LOAD_JOBS_PER_TABLE_PER_DAY} until 00:00 UTC`
  );
}

/**
 * Adds a run's load jobs to its tables' daily counts (at: when the run ended) and returns the warnings this run
 * raised: BigQuery tables it took past the warning line that had none that day. Each warning is a run event.
 */
export async function recordLoadJobs(
  db: D1Database,
  run: { run_id: string; source_id: string },
  report: LoadJobsReport,
  at: string,
): Promise<LoadJobWarning[]> {
  const day = utcDay(at);
  const tables = Object.entries(report.tables).filter(([, jobs]) => jobs > 0);
  if (!tables.length) return [];
  await db.batch(
    tables.map(([table, jobs]) =>
      db
        .prepare(
          `INSERT INTO load_jobs (day, destination, dataset, table_name, source_id, jobs, runs, last_run_at)
           VALUES (?, ?, ?, ?, ?, ?, 1, ?)
           ON CONFLICT (day, destination, dataset, table_name, source_id) DO UPDATE SET
             jobs = jobs + excluded.jobs, runs = runs + 1, last_run_at = MAX(last_run_at, excluded.last_run_at)`,
        )
        .bind(day, report.destination, report.dataset, table, run.source_id, jobs, at),
    ),
  );
  if (report.destination !== "bigquery") return [];
  const names = tables.map(([table]) => table);
  const { results: totals } = await db
    .prepare(
      `SELECT table_name, SUM(jobs) AS jobs FROM load_jobs
       WHERE day = ? AND destination = ? AND dataset = ? AND table_name IN (${names.map(() => "?").join(", ")})
       GROUP BY table_name ORDER BY table_name`,
    )
    .bind(day, report.destination, report.dataset, ...names)
    .all<{ table_name: string; jobs: number }>();
  const warnings: LoadJobWarning[] = [];
  for (const { table_name: table, jobs } of totals) {
    if (!pastWarningLine(jobs, report.budget)) continue;
    // The first run past the line that day claims the warning; later ones (and repeats) find it taken.
    const claimed = await db
      .prepare(
        `INSERT OR IGNORE INTO load_job_warnings (day, destination, dataset, table_name, run_id, jobs, budget, at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .bind(day, report.destination, report.dataset, table, run.run_id, jobs, report.budget, at)
      .run();
    if (claimed.meta.changes !== 1) continue;
    const message = warningText(report, table, jobs, day);
    warnings.push({ dataset: report.dataset, table, jobs, budget: report.budget, message });
    await addEvent(db, run.run_id, message, { load_jobs_today: jobs, load_job_budget: report.budget, table });
  }
  return warnings;
}

/**
 * Owes an alert for the warnings of a run that has just ended: the run's own alert when it ended badly (the
 * warnings are added to its reason while it is unsent), else a new one. notify.ts delivers it.
 */
export async function oweLoadJobAlert(db: D1Database, runId: string, status: string, warnings: LoadJobWarning[]) {
  if (!warnings.length) return;
  const reason = warnings.map((warning) => warning.message).join("; ");
  await db
    .prepare(
      `INSERT INTO run_notifications (run_id, status, reason, created_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (run_id) DO UPDATE SET reason = COALESCE(run_notifications.reason || '; ', '') || excluded.reason
       WHERE run_notifications.sent_at IS NULL AND run_notifications.attempts = 0`,
    )
    .bind(runId, status, reason, new Date().toISOString())
    .run();
}

/** The tables a source loaded on `day`, each with every source's load jobs into it that day, busiest first. */
export async function sourceLoadJobs(db: D1Database, sourceId: string, day: string): Promise<TableLoadJobs[]> {
  const { results } = await db
    .prepare(
      `SELECT l.destination, l.dataset, l.table_name AS "table", l.jobs AS source_jobs, l.runs, l.last_run_at,
         (SELECT SUM(t.jobs) FROM load_jobs t WHERE t.day = l.day AND t.destination = l.destination
            AND t.dataset = l.dataset AND t.table_name = l.table_name) AS jobs
       FROM load_jobs l WHERE l.source_id = ? AND l.day = ?
       ORDER BY jobs DESC, l.dataset, l.table_name`,
    )
    .bind(sourceId, day)
    .all<TableLoadJobs>();
  return results;
}

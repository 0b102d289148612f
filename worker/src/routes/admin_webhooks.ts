/** The admin page's webhook section: per webhook source, what was accepted, refused (by reason), loaded and waits. */
import { html } from "hono/html";
import { allWebhookStats } from "../webhooks/stats";

export async function webhookSection(db: D1Database) {
  const { sources, unknown_source } = await allWebhookStats(db);
  if (!sources.length && !unknown_source) return html``;
  return html`
    <h2>Webhook feeds</h2>
    <table>
      <tr><th>source</th><th>accepted</th><th>waiting</th><th>loaded</th><th>refused</th><th>last delivery</th></tr>
      ${sources.map(
        (s) => html`<tr>
          <td>${s.source_id}${s.enabled ? "" : html` <span class="muted">(disabled)</span>`}</td>
          <td>${s.accepted}</td>
          <td>${s.waiting}</td>
          <td>${s.loaded}</td>
          <td>${s.refused_total}${Object.keys(s.refused).length
            ? html`<div class="muted">${Object.entries(s.refused)
                .map(([reason, count]) => `${reason}: ${count}`)
                .join(", ")}</div>`
            : ""}</td>
          <td>${s.last_delivery_at ?? ""}</td>
        </tr>`,
      )}
    </table>
    ${unknown_source ? html`<p class="muted">Refused for naming no source: ${unknown_source}</p>` : ""}`;
}

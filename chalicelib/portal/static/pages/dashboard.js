// Dashboard: registry totals, D-RECs issued per month, and the pipeline's operations (queues, anchoring lag).
import { get } from '../api.js';
import { ChartBox, html, Loading, number, Table, useAsync, wh } from '../ui.js';

export function Dashboard() {
  const stats = useAsync(() => get('stats'), []);
  const s = stats.data || {};
  const months = s.issuance_by_month || [];
  return html`<h1>Dashboard</h1>
    <${Loading} state=${stats}>
      <ul class="cards" aria-label="totals">
        <li><span class="figure" id="stat-devices">${number(s.devices)}</span> devices</li>
        <li><span class="figure" id="stat-accounts">${number(s.accounts)}</span> accounts</li>
        <li><span class="figure" id="stat-accepted">${wh(s.accepted_wh)}</span> accepted</li>
        <li><span class="figure" id="stat-active">${number(s.drecs_active)}</span> D-RECs active</li>
        <li><span class="figure" id="stat-redeemed">${number(s.drecs_redeemed)}</span> D-RECs redeemed</li>
      </ul>
      <h2>Issuance over time</h2>
      ${months.length ? html`<${ChartBox} label="D-RECs issued per month"
        config=${{ type: 'bar', data: { labels: months.map((m) => m.month),
          datasets: [{ label: 'D-RECs issued', data: months.map((m) => m.count), backgroundColor: '#2f7d4f' }] },
        options: { scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } } }}
        table=${html`<${Table} columns=${[{ key: 'month', label: 'Month' }, { key: 'count', label: 'D-RECs' }]}
          rows=${months} />`} />` : html`<p class="empty">No D-RECs issued yet.</p>`}
      <${Operations} ops=${s.operations} />
    <//>`;
}

// The figures CloudWatch gets as metrics, read from queue attributes and counters (see GET /stats).
function Operations({ ops }) {
  if (!ops) return null;
  const lag = ops.anchoring || {};
  const byStatus = ops.readings_by_status || {};
  const dead = (ops.queues || []).filter((q) => q.dead_letter_depth > 0);
  return html`<h2>Operations</h2>
    ${dead.length ? html`<p class="error" role="alert" id="dead-letters">Dead letters waiting for an operator:
      ${dead.map((q) => `${q.queue}-dlq ${q.dead_letter_depth}`).join(', ')}</p>` : ''}
    <ul class="cards" aria-label="anchoring and readings">
      <li><span class="figure" id="stat-lag-events">${number(lag.lag_events)}</span> events not anchored</li>
      <li><span class="figure" id="stat-lag-seconds">${number(lag.lag_seconds)} s</span> oldest unanchored event</li>
      <li><span class="figure" id="stat-queued">${number(byStatus.queued)}</span> readings queued</li>
      <li><span class="figure" id="stat-held">${number((byStatus.flagged || 0) + (byStatus.awaiting_peers || 0))}</span>
        readings held (flagged or awaiting neighbours)</li>
      <li><span class="figure" id="stat-rejected">${number(byStatus.rejected)}</span> readings rejected</li>
    </ul>
    <${Table} caption="Queues" columns=${[{ key: 'queue', label: 'Queue' },
      { key: 'depth', label: 'Waiting or in flight' }, { key: 'dead_letter_depth', label: 'Dead letters' }]}
      rows=${ops.queues || []} />`;
}

// Dashboard: registry totals and D-RECs issued per month.
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
    <//>`;
}

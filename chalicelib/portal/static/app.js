// The portal's shell: sign-in by API key, navigation, and the hash router over the pages.
import { render } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { onSession, session, signIn, signOut } from './api.js';
import { ErrorBox, html, words } from './ui.js';
import { Dashboard } from './pages/dashboard.js';
import { AccountPage, Accounts } from './pages/accounts.js';
import { DevicePage, Devices } from './pages/devices.js';
import { ReadingPage, Readings } from './pages/readings.js';
import { DrecPage, Drecs } from './pages/drecs.js';
import { Redeem, Transfer } from './pages/trade.js';
import { RedemptionPage } from './pages/redemption.js';

const NAV = [
  ['', 'Dashboard'], ['accounts', 'Accounts'], ['devices', 'Devices'], ['readings', 'Readings'],
  ['drecs', 'D-RECs'], ['transfer', 'Transfer'], ['redeem', 'Redeem'],
];

// [pattern, page]: `:name` segments become props.
const ROUTES = [
  ['', Dashboard], ['accounts', Accounts], ['accounts/:accountId', AccountPage],
  ['devices', Devices], ['devices/:deviceId', DevicePage],
  ['readings', Readings], ['readings/:readingId', ReadingPage],
  ['drecs', Drecs], ['drecs/:serial', DrecPage],
  ['transfer', Transfer], ['redeem', Redeem], ['redemptions/:redemptionId', RedemptionPage],
];

/** `#/drecs?status=active` → {path: 'drecs', query: {status: 'active'}}. */
function parseHash(hash) {
  const [path, search] = hash.replace(/^#\/?/, '').split('?');
  return { path: path.replace(/\/$/, ''), query: Object.fromEntries(new URLSearchParams(search || '')) };
}

function match(path) {
  const parts = path ? path.split('/').map(decodeURIComponent) : [];
  for (const [pattern, page] of ROUTES) {
    const wanted = pattern ? pattern.split('/') : [];
    if (wanted.length !== parts.length) continue;
    const params = {};
    if (wanted.every((w, i) => (w.startsWith(':') ? (params[w.slice(1)] = parts[i], true) : w === parts[i]))) {
      return { page, params };
    }
  }
  return null;
}

function useHash() {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const changed = () => setHash(location.hash);
    addEventListener('hashchange', changed);
    return () => removeEventListener('hashchange', changed);
  }, []);
  return hash;
}

function SignIn({ current }) {
  const [key, setKey] = useState('');
  const [error, setError] = useState(null);
  const [open, setOpen] = useState(false);
  if (current.key) {
    return html`<div class="signin signed-in">
      <span id="who">Signed in as <strong>${words(current.role)}</strong>${current.id ? ` ${current.id}` : ''}</span>
      <button type="button" class="secondary" onClick=${signOut}>Sign out</button>
    </div>`;
  }
  if (!open) {
    return html`<div class="signin"><span>Reading needs no key.</span>
      <button type="button" onClick=${() => setOpen(true)}>Sign in with an API key</button></div>`;
  }
  const submit = async (event) => {
    event.preventDefault();
    setError(null);
    try {
      await signIn(key.trim());
      // The key now lives in sessionStorage only; the form forgets it.
      setKey('');
      setOpen(false);
    } catch (exc) {
      setError(exc);
    }
  };
  return html`<form class="signin" id="signin" onSubmit=${submit}>
    <div class="field"><label for="signin-key">API key</label>
      <input id="signin-key" type="password" autocomplete="off" required value=${key}
        aria-describedby="signin-hint" onInput=${(e) => setKey(e.target.value)} /></div>
    <button type="submit">Sign in</button>
    <button type="button" class="secondary" onClick=${() => setOpen(false)}>Cancel</button>
    <small id="signin-hint">The API tells whose key it is. Kept for this browser tab only (sessionStorage).</small>
    <${ErrorBox} error=${error} />
  </form>`;
}

function App() {
  const hash = useHash();
  const [current, setCurrent] = useState(session());
  useEffect(() => onSession(setCurrent), []);
  const { path, query } = parseHash(hash);
  const found = match(path);
  const main = useRef(null);
  const routed = useRef(false);
  useEffect(() => {
    // A page load leaves focus at the document's start (skip link first); a later route change moves focus
    // to the new page's heading, so keyboard and screen-reader users land where the content changed.
    if (!routed.current) { routed.current = true; return; }
    const heading = main.current && main.current.querySelector('h1');
    if (heading) { heading.setAttribute('tabindex', '-1'); heading.focus({ preventScroll: true }); }
  }, [path]);
  const section = path.split('/')[0];
  return html`
    <a class="skip" href="#main" onClick=${(e) => { e.preventDefault(); main.current.focus(); }}>Skip to content</a>
    <header>
      <div class="brand"><img src="portal/icon.svg" alt="" width="28" height="28" /><span>D-REC registry</span></div>
      <nav aria-label="main"><ul>${NAV.map(([href, label]) => html`<li><a href=${`#/${href}`}
        aria-current=${section === href || (href === 'drecs' && section === 'redemptions') ? 'page' : undefined}
        >${label}</a></li>`)}</ul></nav>
      <${SignIn} current=${current} />
    </header>
    <main id="main" ref=${main} tabindex="-1">
      ${found ? html`<${found.page} key=${`${path} ${current.id || ''}`} ...${found.params} query=${query} session=${current} />`
        : html`<h1>Page not found</h1><p>No page at <code>${path}</code>. <a href="#/">Dashboard</a></p>`}
    </main>
    <footer><a href="openapi.json">HTTP API (OpenAPI)</a> · certificates of 1 kWh from distributed renewables</footer>`;
}

render(html`<${App} />`, document.getElementById('root'));

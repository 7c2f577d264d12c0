// The HTTP API as the portal sees it: one request function, errors as ApiError, the session key.
const STORAGE = 'drec.session';

/** The API lives beside index.html (also under an API Gateway stage such as /api/). */
export const apiBase = new URL('.', document.baseURI);

export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field || null;
  }

  /** What a person should read: the status in words, then the API's own message. */
  get plain() {
    if (this.code === 'not_available') return `Not available on this server (${this.status}): ${this.message}`;
    const titles = { 400: 'The request was not accepted', 401: 'Sign-in needed', 403: 'Not allowed',
      404: 'Not found', 409: 'Conflict', 422: 'Rule broken' };
    const title = titles[this.status] || (this.status ? `Error ${this.status}` : 'Network error');
    return `${title} (${this.status || 'no response'}): ${this.message}`;
  }
}

export function apiUrl(path, query) {
  const url = new URL(String(path).replace(/^\//, ''), apiBase);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== '') url.searchParams.set(name, value);
  }
  return url;
}

function errorFrom(status, text) {
  let body = null;
  try { body = JSON.parse(text); } catch { /* not JSON: keep the raw text below */ }
  const error = body && body.error;
  if (error && typeof error === 'object') return new ApiError(status, error.code, error.message, error.field);
  // API Gateway and `chalice local` answer unknown routes with {"message": ...}.
  const message = (body && body.message) || text || 'no details';
  const missingRoute = status === 404 || (status === 403 && /Missing Authentication/.test(message));
  return new ApiError(status, missingRoute
    ? 'not_available' : 'http_error', message, null);
}

/**
 * One call to the API, with the session key when signed in: on reads too, because the API shows an
 * account's contact and its devices' exact locations only to their owner, its sources and the operator.
 */
export async function request(method, path, { query, body, key } = {}) {
  const headers = { Accept: 'application/json' };
  const sendKey = key !== undefined ? key : session().key;
  if (sendKey) headers['X-Api-Key'] = sendKey;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(apiUrl(path, query), { method, headers,
      body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (exc) {
    throw new ApiError(0, 'network', `the API could not be reached (${exc.message})`);
  }
  const text = await response.text();
  if (response.status === 401 && method === 'GET' && key === undefined && sendKey) {
    // The session's key was rotated or revoked elsewhere: it answers 401 everywhere now. Reads are
    // public, so sign out (the header says so) and read again as the public does.
    signOut();
    return request(method, path, { query, body, key: null });
  }
  if (!response.ok) throw errorFrom(response.status, text);
  return text ? JSON.parse(text) : null;
}

export const get = (path, query) => request('GET', path, { query });
export const post = (path, body) => request('POST', path, { body });

/** Raw text upload with progress (fetch cannot report upload progress; XMLHttpRequest can). */
export function uploadText(path, text, { query, contentType = 'text/csv', onProgress } = {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', apiUrl(path, query));
    xhr.setRequestHeader('Content-Type', contentType);
    xhr.setRequestHeader('Accept', 'application/json');
    const key = session().key;
    if (key) xhr.setRequestHeader('X-Api-Key', key);
    xhr.upload.onprogress = (event) => onProgress && event.lengthComputable && onProgress(event.loaded / event.total);
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) resolve(xhr.responseText ? JSON.parse(xhr.responseText) : null);
      else reject(errorFrom(xhr.status, xhr.responseText));
    };
    xhr.onerror = () => reject(new ApiError(0, 'network', 'the upload could not reach the API'));
    xhr.send(text);
  });
}

/** Walks a list endpoint's cursors; returns every item (bounded, for small lists such as events). */
export async function getAll(path, query, maxPages = 20) {
  const items = [];
  let cursor = null;
  for (let page = 0; page < maxPages; page += 1) {
    const body = await get(path, { ...query, cursor, limit: 200 });
    items.push(...(body.items || []));
    cursor = body.next_cursor;
    if (!cursor) break;
  }
  return items;
}

// ---- session: the API key lives in sessionStorage only, so closing the tab signs out.

const listeners = new Set();

export function session() {
  try { return JSON.parse(sessionStorage.getItem(STORAGE)) || {}; } catch { return {}; }
}

export function onSession(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

function publish(value) {
  if (value) sessionStorage.setItem(STORAGE, JSON.stringify(value));
  else sessionStorage.removeItem(STORAGE);
  for (const listener of listeners) listener(session());
}

/** Signs in with a key: the API says whom it belongs to (`GET /whoami`), so nobody has to declare a role. */
export async function signIn(key) {
  const who = await request('GET', 'whoami', { key });
  publish({ key, role: who.kind, id: who.id });
  return session();
}

export function signOut() {
  sessionStorage.removeItem(REDEMPTIONS);
  publish(null);
}

// ---- redemption answers: only the POST answer's ledger link carries the download token.

const REDEMPTIONS = 'drec.redemptions';

function keptRedemptions() {
  try { return JSON.parse(sessionStorage.getItem(REDEMPTIONS)) || {}; } catch { return {}; }
}

/** Keeps a redemption's tokened ledger link for this tab, so its statement page can offer the download. */
export function keepLedgerLink(redemptionId, ledgerUrl) {
  sessionStorage.setItem(REDEMPTIONS, JSON.stringify({ ...keptRedemptions(), [redemptionId]: ledgerUrl }));
}

/** The tokened ledger link kept for a redemption in this tab, or null. */
export function keptLedgerLink(redemptionId) {
  return keptRedemptions()[redemptionId] || null;
}

/** What the signed-in key may attempt; the API has the last word. */
const ALLOWED = {
  register_source: ['operator'],
  register_account: ['operator', 'source'],
  register_device: ['operator', 'source', 'account'],
  upload_readings: ['source'],
  review_readings: ['operator'],
  review_devices: ['operator'],
  transfer: ['operator', 'source', 'account'],
  redeem: ['operator', 'source', 'account'],
};

export function can(action, current = session()) {
  return Boolean(current.key) && (ALLOWED[action] || []).includes(current.role);
}

// api.js calls the pod. Every call carries the X-Byoda-Web header, without
// which the pod ignores the session cookie, and every failure becomes an
// ApiError whose message is the pod's own explanation.

// ApiError is a failed call: status is the HTTP status, 0 when the pod
// could not be reached, and message is the pod's detail.
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
  }
}

// onSignedOut is called when the pod says the session is missing or over.
let signedOutHandler = () => {};

export function onSignedOut(f) {
  signedOutHandler = f;
}

// call sends a request with an optional JSON body and returns the decoded
// JSON answer.
export async function call(method, path, body) {
  const init = {
    method,
    headers: { 'X-Byoda-Web': '1', Accept: 'application/json' },
    credentials: 'same-origin',
    cache: 'no-store',
  };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }

  let resp;
  try {
    resp = await fetch(path, init);
  } catch {
    throw new ApiError(0, 'the pod could not be reached; check the connection and try again');
  }

  let data = null;
  const text = await resp.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!resp.ok) {
    let detail = data && typeof data.detail === 'string' ? data.detail : '';
    if (!detail) {
      detail = `the pod answered ${resp.status} ${resp.statusText}`.trim();
    }
    const err = new ApiError(resp.status, detail);
    if (resp.status === 401 && !path.endsWith('/web/session')) {
      signedOutHandler(err);
    }
    throw err;
  }
  return data;
}

// The session.
export const session = {
  get: () => call('GET', '/api/v1/pod/web/session'),
  signIn: (username, password) => call('POST', '/api/v1/pod/web/session',
    { username, password }),
  signOut: () => call('DELETE', '/api/v1/pod/web/session'),
};

// The account and its services.
export const overview = () => call('GET', '/api/v1/pod/web/overview');
export const services = () => call('GET', '/api/v1/pod/web/services');
export const service = (sid) => call('GET', `/api/v1/pod/web/service/${sid}`);
export const join = (sid, version) =>
  call('POST', `/api/v1/pod/member/service_id/${sid}/version/${version}`);

// data runs a Data API action on a class of a membership, as its owner.
export function data(sid, cls, action, body) {
  const path = `/api/v1/pod/web/data/${sid}/${encodeURIComponent(cls)}/${action}`;
  return call('POST', path, body || {});
}

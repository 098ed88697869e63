// A minimal WHATWG EventSource for Node 20 (which has none), over fetch: enough for the
// PocketBase SDK's realtime service (named events, `lastEventId`, `close`, `onerror`).
// Reconnecting is the SDK's job (it creates a new EventSource), so this one never retries.
export class EventSource extends EventTarget {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSED = 2;

  constructor(url) {
    super();
    this.url = String(url);
    this.readyState = EventSource.CONNECTING;
    this.onerror = null;
    this.onopen = null;
    this.onmessage = null;
    this._abort = new AbortController();
    this._run();
  }

  close() {
    this.readyState = EventSource.CLOSED;
    this._abort.abort();
  }

  _fail() {
    if (this.readyState === EventSource.CLOSED) return;
    this.readyState = EventSource.CLOSED;
    const ev = new Event('error');
    this.onerror?.(ev);
    this.dispatchEvent(ev);
  }

  async _run() {
    let res;
    try {
      res = await fetch(this.url, { headers: { Accept: 'text/event-stream' }, signal: this._abort.signal });
    } catch {
      return this._fail();
    }
    if (!res.ok || !res.body) return this._fail();
    this.readyState = EventSource.OPEN;
    const open = new Event('open');
    this.onopen?.(open);
    this.dispatchEvent(open);
    const decoder = new TextDecoder();
    let buf = '';
    try {
      for await (const chunk of res.body) {
        buf += decoder.decode(chunk, { stream: true });
        let end;
        while ((end = buf.indexOf('\n\n')) >= 0) {
          const frame = buf.slice(0, end);
          buf = buf.slice(end + 2);
          this._dispatch(frame);
        }
      }
    } catch {
      // aborted or broken: fall through
    }
    this._fail();
  }

  _dispatch(frame) {
    let type = 'message';
    let data = [];
    let id = '';
    for (const line of frame.split('\n')) {
      const i = line.indexOf(':');
      if (i <= 0) continue;
      const field = line.slice(0, i);
      let value = line.slice(i + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'event') type = value;
      else if (field === 'data') data.push(value);
      else if (field === 'id') id = value;
    }
    const ev = new MessageEvent(type, { data: data.join('\n'), lastEventId: id });
    if (type === 'message') this.onmessage?.(ev);
    this.dispatchEvent(ev);
  }
}

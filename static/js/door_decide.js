// The door's offline decision: what a scanned or typed code means, and whether the door list on
// this phone (plus the phone's own admissions) lets its holder in. The server decides the same way
// online (tickets/checkin.py); offline the phone cannot check a QR's signature nor a rotating QR's
// code, so it recognises tickets by id, and a rotating-QR event falls back to the identity check.

// Ticket ids in the door list are cut to this many hex digits (tickets/doorlist.py).
export const TICKET_ID_DIGITS = 16;

// ``{kind, key}``: kind is qr (the fixed QR: TW1.<id>.<signature>), rotating (TWR.<id>.<code>),
// card (a student card's barcode: the 9-digit NIM), code (a redeem code) or unknown.
export function parseCode(raw, config) {
  const text = String(raw || "").trim();
  const parts = text.split(".");
  if ((parts[0] === "TW1" || parts[0] === "TWR") && parts.length === 3 && /^[0-9a-fA-F]{32}$/.test(parts[1])) {
    return { kind: parts[0] === "TW1" ? "qr" : "rotating", key: parts[1].slice(0, TICKET_ID_DIGITS).toLowerCase() };
  }
  if (new RegExp(config.card_pattern).test(text)) return { kind: "card", key: text };
  const code = text.toUpperCase().replace(/[\s-]/g, "");
  const alphabet = new RegExp(`^[${config.redeem_alphabet}]{${config.redeem_length}}$`);
  if (alphabet.test(code)) return { kind: "code", key: code };
  return { kind: "unknown", key: text };
}

// The door list as the phone keeps it: rows by ticket id, with look-ups by code and NIM.
export class DoorList {
  constructor(event, rows = []) {
    this.event = event;
    this.byId = new Map();
    this.byCode = new Map();
    this.byNim = new Map();
    rows.forEach((row) => this.put(row));
  }

  put(row) {
    const old = this.byId.get(row.id);
    if (old) this.remove(row.id, old);
    this.byId.set(row.id, row);
    this.byCode.set(row.code, row);
    if (row.nim) this.byNim.set(row.nim, row);
  }

  remove(id, row = this.byId.get(id)) {
    if (!row) return;
    this.byId.delete(id);
    if (this.byCode.get(row.code) === row) this.byCode.delete(row.code);
    if (row.nim && this.byNim.get(row.nim) === row) this.byNim.delete(row.nim);
  }

  get size() {
    return this.byId.size;
  }

  admittedCount() {
    let n = 0;
    this.byId.forEach((row) => { if (row.admitted_at) n += 1; });
    return n;
  }

  // Tickets whose NIM starts with, or whose holder's name contains, the query (at most ``limit``).
  search(query, limit = 8) {
    const q = String(query || "").trim().toLowerCase();
    if (q.length < 2) return [];
    const found = [];
    for (const row of this.byId.values()) {
      if (row.nim.startsWith(q) || row.name.toLowerCase().includes(q)) found.push(row);
      if (found.length >= limit) break;
    }
    return found;
  }

  find(parsed) {
    if (parsed.kind === "qr" || parsed.kind === "rotating") return this.byId.get(parsed.key);
    if (parsed.kind === "card") return this.byNim.get(parsed.key);
    if (parsed.kind === "code") return this.byCode.get(parsed.key);
    return undefined;
  }
}

// Row arrays of the door list (its ``fields``) as objects.
export function rowsFromList(fields, arrays) {
  return arrays.map((values) => Object.fromEntries(fields.map((name, i) => [name, values[i]])));
}

// The offline answer to one scan: ``{result, reason, row}`` with result admitted, already,
// identity or invalid. ``identityChecked``: staff compared the student ID card (or used the lookup).
export function decideOffline(list, parsed, { identityChecked = false } = {}) {
  const event = list.event;
  if (parsed.kind === "unknown") return { result: "invalid", reason: "unknown" };
  // A fixed QR at a rotating-QR event may be a screenshot passed on; a rotating one elsewhere is forged.
  if ((parsed.kind === "qr" && event.rotating_qr) || (parsed.kind === "rotating" && !event.rotating_qr)) {
    return { result: "invalid", reason: "unknown" };
  }
  if (parsed.kind === "card" && !event.accepts_student_card) return { result: "invalid", reason: "card_not_accepted" };
  const row = list.find(parsed);
  if (!row) return { result: "invalid", reason: parsed.kind === "card" ? "card_no_ticket" : "unknown" };
  if (row.admitted_at) return { result: "already", reason: "", row };
  // Offline nothing can tell a rotating code from a screenshot of it: staff compare the ID card.
  const needsIdentity = event.rotating_qr && (parsed.kind === "rotating" || parsed.kind === "code");
  if (needsIdentity && !identityChecked) return { result: "identity", reason: "", row };
  return { result: "admitted", reason: "", row };
}

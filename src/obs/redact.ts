// Phone numbers are personal data. With --redact-phone-numbers a number
// keeps its international prefix (`+` or `00`), its first two digits and its
// last two; the digits between become `*` and the formatting goes:
// `+31 20 123 4589` → `+31*******89`. README ("What redaction recognises")
// lists exactly what is and is not recognised; redact.test.ts pins it.
//
// Two readings, by field:
// - `from` and `to` always hold a number (LiveKit's sip.phoneNumber and
//   sip.trunkPhoneNumber): every digit of the value is the number,
//   whatever the format (maskPhoneNumber).
// - identities, room names and free text (`error`, `detail`) may quote a
//   number among other things: numbers are looked for (redactPhoneNumbersInText).

import type { FieldName } from './schema.ts';

/** Digits after `+` or `00` for a number in text: E.164 allows 15 at most; fewer than 7 is no phone number. */
const MIN_DIGITS_WITH_PREFIX = 7;
/** Without a prefix more digits are needed, so that short counts, sizes and durations stay readable. */
const MIN_DIGITS_WITHOUT_PREFIX = 9;
const MAX_DIGITS = 15;
/** From this many digits on, the first two and last two are kept; a shorter number is masked whole. */
const MIN_DIGITS_TO_KEEP_ENDS = 7;
/** Digits inside one pair of parentheses: `(415)`, `(0)`. */
const MAX_DIGITS_IN_PARENTHESES = 5;

const PLUS = 0x2b;
const ZERO = 0x30;
const NINE = 0x39;
const OPEN = 0x28;
const CLOSE = 0x29;
const COLON = 0x3a;

const isDigit = (code: number): boolean => code >= ZERO && code <= NINE;
const isLetterOrDigit = (code: number): boolean => isDigit(code) || (code >= 0x41 && code <= 0x5a) || (code >= 0x61 && code <= 0x7a);
/** Between two groups of digits, one of these at most: space, dot, dash. */
const isSeparator = (code: number): boolean => code === 0x20 || code === 0x2e || code === 0x2d;

/** `prefix` + the first two and last two of `digits`, `*` for each digit between (all `*` when too short). */
function mask(prefix: string, digits: string): string {
  if (digits.length < MIN_DIGITS_TO_KEEP_ENDS) return prefix + '*'.repeat(digits.length);
  return prefix + digits.slice(0, 2) + '*'.repeat(digits.length - 4) + digits.slice(-2);
}

/**
 * `from` / `to`: the value is a number whatever its format. All its digits
 * are the number; a `+` before the first digit (or a leading `00`) is kept
 * as the prefix. A value without any digit (`anonymous`) is not a number
 * and stays as it is.
 */
export function maskPhoneNumber(value: string): string {
  let digits = '';
  let firstDigit = -1;
  for (let index = 0; index < value.length; index++) {
    if (!isDigit(value.charCodeAt(index))) continue;
    if (firstDigit === -1) firstDigit = index;
    digits += value[index];
  }
  if (digits === '') return value;
  const plus = value.indexOf('+');
  if (plus !== -1 && plus < firstDigit) return mask('+', digits);
  if (digits.startsWith('00')) return mask('00', digits.slice(2));
  return mask('', digits);
}

interface Candidate {
  /** Index after the number's last digit or `)`. */
  readonly end: number;
  readonly digits: string;
  /** Separators and parenthesised groups seen (0: one bare run of digits). */
  readonly joints: number;
  /** The only separator, when there was exactly one (a `.` alone reads as a decimal point). */
  readonly onlySeparator: string;
}

/**
 * Reads groups of digits from `start`: a run of digits or 1-5 digits in
 * parentheses, joined by at most one space, dot or dash (or nothing next
 * to a parenthesis). Stops before anything else.
 */
function readGroups(text: string, start: number): Candidate | null {
  let position = start;
  let end = -1;
  let digits = '';
  let joints = 0;
  let separators = '';
  for (;;) {
    const code = text.charCodeAt(position);
    if (code === OPEN) {
      let close = position + 1;
      while (isDigit(text.charCodeAt(close))) close++;
      const count = close - position - 1;
      if (count < 1 || count > MAX_DIGITS_IN_PARENTHESES || text.charCodeAt(close) !== CLOSE) break;
      digits += text.slice(position + 1, close);
      joints++;
      position = close + 1;
    } else if (isDigit(code)) {
      const from = position;
      while (isDigit(text.charCodeAt(position))) position++;
      digits += text.slice(from, position);
    } else {
      break;
    }
    end = position;
    const next = text.charCodeAt(position);
    if (isSeparator(next)) {
      const after = text.charCodeAt(position + 1);
      if (!isDigit(after) && !(after === OPEN && isDigit(text.charCodeAt(position + 2)))) break;
      separators += text[position];
      joints++;
      position++;
    } else if (next !== OPEN && !isDigit(next)) {
      break;
    }
  }
  if (end === -1) return null;
  return { end, digits, joints, onlySeparator: separators.length === 1 ? separators : '' };
}

/** What replaces the candidate, or undefined when it is not a phone number. */
function maskedCandidate(text: string, start: number, plus: boolean, candidate: Candidate): string | undefined {
  const after = text.charCodeAt(candidate.end);
  // Glued to a letter or digit (an id, `74000ms`), or a clock time (`2026-11-30 09:28`).
  if (isLetterOrDigit(after) || (after === COLON && isDigit(text.charCodeAt(candidate.end + 1)))) return undefined;
  let prefix = plus ? '+' : '';
  let digits = candidate.digits;
  if (!plus && digits.startsWith('00') && text.charCodeAt(start) !== OPEN) {
    prefix = '00';
    digits = digits.slice(2);
  }
  if (digits.length < (prefix === '' ? MIN_DIGITS_WITHOUT_PREFIX : MIN_DIGITS_WITH_PREFIX)) return undefined;
  // One bare run longer than any phone number is some other number; grouped, it may be several numbers: masked whole.
  if (digits.length > MAX_DIGITS && candidate.joints === 0) return undefined;
  if (prefix === '') {
    const written = text.slice(start, candidate.end);
    if (/^\d{1,3}(?:\.\d{1,3}){3}$/.test(written)) return undefined; // an IPv4 address
    if (candidate.onlySeparator === '.' && candidate.joints === 1) return undefined; // a decimal number
  }
  return mask(prefix, digits);
}

/**
 * Identities, room names and free text: every phone number found is masked
 * (`sip_+14155550123` → `sip_+14*******23`, `call-+1-415-555-0123` →
 * `call-+14*******23`); everything else is kept as it is. See README, "What
 * redaction recognises".
 */
export function redactPhoneNumbersInText(text: string): string {
  let result = '';
  let copiedUpTo = 0;
  let index = 0;
  while (index < text.length) {
    const code = text.charCodeAt(index);
    const plus = code === PLUS;
    const first = plus ? index + 1 : index;
    const firstCode = text.charCodeAt(first);
    const startsGroup = isDigit(firstCode) || (firstCode === OPEN && isDigit(text.charCodeAt(first + 1)));
    // A number without `+` starts at the beginning or after a character that is not a letter or digit (`sip_`, `call-`, ` `).
    if (!startsGroup || (!plus && index > 0 && isLetterOrDigit(text.charCodeAt(index - 1)))) {
      index++;
      continue;
    }
    const candidate = readGroups(text, first);
    if (candidate === null) {
      index++;
      continue;
    }
    const masked = maskedCandidate(text, first, plus, candidate);
    if (masked !== undefined) {
      result += text.slice(copiedUpTo, index) + masked;
      copiedUpTo = candidate.end;
    }
    // Never looked into again: a refused candidate (a date, an id's digits) hides no shorter number.
    index = candidate.end;
  }
  return copiedUpTo === 0 ? text : result + text.slice(copiedUpTo);
}

/** The Redactor of --redact-phone-numbers (schema.ts applies it to PHONE_FIELDS). */
export function redactPhoneNumbers(value: string, field: FieldName): string {
  return field === 'from' || field === 'to' ? maskPhoneNumber(value) : redactPhoneNumbersInText(value);
}

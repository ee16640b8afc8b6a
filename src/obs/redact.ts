// Phone numbers are personal data (SPEC §4). An E.164 number is `+` and 7
// to 15 digits; redaction keeps the `+`, the first two digits and the last
// two: +31201234589 → +31*******89. Numbers embedded in identities
// (`sip_+14155550123`) and room names (`call_+14155550123_k2Zq`) are masked
// the same way.

const E164 = /\+(\d{7,15})(?!\d)/g;

export function redactPhoneNumbers(text: string): string {
  if (!text.includes('+')) return text;
  return text.replace(E164, (_match, digits: string) => `+${digits.slice(0, 2)}${'*'.repeat(digits.length - 4)}${digits.slice(-2)}`);
}

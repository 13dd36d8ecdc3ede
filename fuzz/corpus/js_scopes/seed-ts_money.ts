// Money arithmetic with a branded type.

export type Currency = 'EUR' | 'USD' | 'GBP';

export interface Money {
  readonly cents: number;
  readonly currency: Currency;
}

export function money(cents: number, currency: Currency = 'EUR'): Money {
  if (!Number.isSafeInteger(cents)) {
    throw new RangeError(`money(): cents must be a safe integer, got ${cents}`);
  }
  return { cents, currency };
}

export function add(a: Money, b: Money): Money {
  if (a.currency !== b.currency) {
    throw new Error(`currency mismatch: ${a.currency} + ${b.currency}`);
  }
  return money(a.cents + b.cents, a.currency);
}

export const sum = (items: ReadonlyArray<Money>, currency: Currency): Money =>
  items.reduce<Money>((acc, item) => add(acc, item), money(0, currency));

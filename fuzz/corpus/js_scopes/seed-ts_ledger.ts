// A tiny double-entry ledger written in TypeScript.
import { add, money, sum, type Currency, type Money } from './money.js';

export interface Entry {
  account: string;
  amount: Money;
  memo?: string;
}

type Validator<T> = (value: T, index: number) => void;

export class Ledger<TMeta extends Record<string, unknown> = Record<string, unknown>> {
  private readonly entries: Entry[] = [];
  private readonly validators: Validator<Entry>[] = [];
  readonly currency: Currency;
  private meta: TMeta;

  constructor(currency: Currency, meta?: TMeta) {
    this.currency = currency;
    this.meta = meta ?? ({} as TMeta);
  }

  describe(): string {
    return `${this.currency} ledger ${JSON.stringify(this.meta)}`;
  }

  addValidator(validator: Validator<Entry>): this {
    this.validators.push(validator);
    return this;
  }

  post(account: string, cents: number, memo?: string): Entry {
    const entry: Entry = { account, amount: money(cents, this.currency), memo };
    this.validators.forEach((validate) => validate(entry, this.entries.length));
    this.entries.push(entry);
    return entry;
  }

  importEntries(entries: ReadonlyArray<Entry>): number {
    for (const entry of entries) {
      this.entries.push({ ...entry });
    }
    return this.entries.length;
  }

  balance(account: string): Money {
    const amounts = this.entries
      .filter((entry: Entry) => entry.account === account)
      .map((entry: Entry): Money => entry.amount);
    return sum(amounts, this.currency);
  }

  transfer(from: string, to: string, amount: Money): void {
    const current = this.balance(from);
    const after = add(current, { cents: -amount.cents, currency: amount.currency });
    if (after.cents < 0) {
      throw new Error(`insufficient funds in ${from}: ${current.cents} < ${amount.cents}`);
    }
    this.post(from, -amount.cents, `to ${to}`);
    this.post(to, amount.cents, `from ${from}`);
  }
}

export function noEmptyMemo(entry: Entry): void {
  if (entry.memo !== undefined && entry.memo.trim() === '') {
    throw new Error(`empty memo on ${entry.account}`);
  }
}

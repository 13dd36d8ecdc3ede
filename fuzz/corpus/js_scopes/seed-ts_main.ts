// Entry point of the TypeScript chain fixture; registers globalThis.TRACEMAP_RUN.
import { Ledger, noEmptyMemo } from './ledger.js';
import { money, type Money } from './money.js';

declare global {
  // eslint-disable-next-line no-var
  var TRACEMAP_RUN: ((name: string) => unknown) | undefined;
  // eslint-disable-next-line no-var
  var TRACEMAP_SCENARIOS: string[] | undefined;
}

function openLedger(): Ledger {
  const ledger = new Ledger('EUR');
  ledger.addValidator(noEmptyMemo);
  ledger.post('cash', 10_000, 'opening balance');
  return ledger;
}

const scenarios: Record<string, () => unknown> = {
  // depth 4: Ledger.transfer <- settle <- transfer <- runScenario
  transfer: () => settle(openLedger(), 25_000),
  // depth 8: add <- reduce callback <- sum <- Ledger.balance <- Ledger.transfer <- settle <- mixed <- runScenario
  mixed: () => {
    const ledger = openLedger();
    ledger.importEntries([{ account: 'cash', amount: money(100, 'USD') }]);
    return settle(ledger, 100);
  },
  // depth 5: noEmptyMemo <- forEach callback <- Ledger.post <- memo <- runScenario
  memo: () => openLedger().post('bank', 200, '   '),
  // depth 4: money <- Ledger.post <- fraction <- runScenario
  fraction: () => openLedger().post('bank', 12.5),
};

function settle(ledger: Ledger, cents: number): Money {
  ledger.transfer('cash', 'bank', money(cents));
  return ledger.balance('bank');
}

function runScenario(name: string): unknown {
  const scenario = scenarios[name];
  if (scenario === undefined) {
    throw new Error(`unknown scenario ${name}`);
  }
  return scenario();
}

globalThis.TRACEMAP_RUN = runScenario;
globalThis.TRACEMAP_SCENARIOS = Object.keys(scenarios);

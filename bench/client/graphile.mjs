// graphile-worker reference: runs `count` no-op jobs already queued with the
// given concurrency (NO_PREPARED_STATEMENTS=1 behind PgBouncer in transaction
// mode) and prints {"tasks": n, "seconds": s, "tasks_per_second": r}.
import { run } from "graphile-worker";

const [count, concurrency] = process.argv.slice(2).map(Number);
const started = process.hrtime.bigint();
let done = 0;
const runner = await run({
  connectionString: process.env.DATABASE_URL,
  concurrency,
  noHandleSignals: true,
  noPreparedStatements: process.env.NO_PREPARED_STATEMENTS === "1",
  pollInterval: 1000,
  logger: undefined,
  taskList: { noop: async () => {} },
});
await new Promise((resolve) => {
  runner.events.on("job:success", () => { if (++done >= count) resolve(); });
});
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
await runner.stop();
console.log(JSON.stringify({ tasks: done, seconds, tasks_per_second: done / seconds }));

// kafkajs producing one batch of 100 records, 10 without a key, to a
// compacted topic. kafkajs speaks Produce up to v7, which has no
// record_errors field (Produce v8, KIP-467), so it can only fail the whole
// batch. Prints one JSON line: the error kafkajs reports.
//
// usage: node record_errors.js HOST:PORT TOPIC
'use strict';
const { Kafka, Partitioners, logLevel } = require('kafkajs');

async function main() {
  const [broker, topic] = process.argv.slice(2);
  if (!broker || !topic) throw new Error('usage: node record_errors.js HOST:PORT TOPIC');
  const kafka = new Kafka({
    clientId: 'corestream-kafkajs-record-errors',
    brokers: [broker],
    logLevel: logLevel.NOTHING,
    retry: { retries: 0 },
  });
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const messages = [];
  for (let i = 0; i < 100; i++) {
    messages.push({ key: i % 10 === 0 ? null : `k${i}`, value: `v${i}`, partition: 0 });
  }
  let outcome;
  try {
    await producer.send({ topic, acks: -1, messages });
    outcome = { error: null };
  } catch (e) {
    const cause = e.originalError || e;
    outcome = { error: cause.type || cause.name, message: String(cause.message) };
  }
  await producer.disconnect();
  console.log(JSON.stringify(outcome));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

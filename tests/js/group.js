// kafkajs group consumer against corestreamd: joins GROUP, reads COUNT
// records of TOPIC from the beginning, commits, then reads the group's
// committed offsets with the admin client. Prints one JSON line:
// {"records": [[partition, offset], ...], "committed": {partition: offset}}.
//
// usage: node group.js HOST:PORT TOPIC GROUP COUNT
'use strict';
const { Kafka, logLevel } = require('kafkajs');

async function main() {
  const [broker, topic, groupId, countArg] = process.argv.slice(2);
  const count = Number(countArg);
  if (!broker || !topic || !groupId || !(count > 0)) {
    throw new Error('usage: node group.js HOST:PORT TOPIC GROUP COUNT');
  }
  const kafka = new Kafka({
    clientId: 'corestream-kafkajs-group-test',
    brokers: [broker],
    logLevel: logLevel.WARN,
    retry: { retries: 5 },
  });
  const consumer = kafka.consumer({ groupId, sessionTimeout: 6000, heartbeatInterval: 500 });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  const records = [];
  let resolveDone;
  const done = new Promise((r) => { resolveDone = r; });
  await consumer.run({
    autoCommit: true,
    eachMessage: async ({ partition, message }) => {
      records.push([partition, Number(message.offset)]);
      if (records.length >= count) resolveDone();
    },
  });
  const timer = setTimeout(() => resolveDone(), 60000);
  await done;
  clearTimeout(timer);
  await consumer.disconnect(); // commits the resolved offsets, leaves the group
  const admin = kafka.admin();
  await admin.connect();
  const offsets = await admin.fetchOffsets({ groupId, topics: [topic] });
  const committed = {};
  for (const p of offsets[0].partitions) committed[p.partition] = Number(p.offset);
  await admin.disconnect();
  process.stdout.write(JSON.stringify({ records, committed }) + '\n');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

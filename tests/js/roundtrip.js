// kafkajs against corestreamd: createTopics, metadata, produce (acks=all),
// fetchTopicOffsets. Prints one JSON line on stdout for the Python test to
// check; the records themselves are read back by the test with librdkafka
// (kafkajs consumers always join a group, not implemented by the broker yet).
//
// usage: node roundtrip.js HOST:PORT TOPIC COUNT
'use strict';
const { Kafka, Partitioners, logLevel } = require('kafkajs');

async function main() {
  const [broker, topic, countArg] = process.argv.slice(2);
  const count = Number(countArg);
  if (!broker || !topic || !(count > 0)) {
    throw new Error('usage: node roundtrip.js HOST:PORT TOPIC COUNT');
  }
  const kafka = new Kafka({
    clientId: 'corestream-kafkajs-test',
    brokers: [broker],
    logLevel: logLevel.WARN,
    retry: { retries: 3 },
  });

  const admin = kafka.admin();
  await admin.connect();
  const created = await admin.createTopics({
    topics: [{ topic, numPartitions: 3, replicationFactor: 1 }],
    waitForLeaders: true,
  });
  if (!created) throw new Error(`createTopics(${topic}) returned false: topic already existed`);
  const md = await admin.fetchTopicMetadata({ topics: [topic] });
  const partitions = md.topics[0].partitions.map((p) => p.partitionId).sort((a, b) => a - b);

  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const acks = [];
  const chunk = 100;
  for (let start = 0; start < count; start += chunk) {
    const messages = [];
    for (let i = start; i < Math.min(count, start + chunk); i++) {
      messages.push({ key: `key-${i % 1000}`, value: `v-${i}` });
    }
    const res = await producer.send({ topic, acks: -1, messages });
    for (const r of res) {
      if (r.errorCode !== 0) throw new Error(`produce error ${JSON.stringify(r)}`);
      acks.push({ partition: r.partition, baseOffset: r.baseOffset });
    }
  }
  await producer.disconnect();

  const offsets = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  process.stdout.write(JSON.stringify({ partitions, acks, offsets }) + '\n');
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : err);
  process.exit(1);
});

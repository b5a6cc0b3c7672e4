// kafkajs over SASL_SSL: produce N records, read them back, print the count.
// node secure.js BOOTSTRAP CA_FILE MECHANISM USER PASSWORD TOPIC N
const fs = require("fs");
const { Kafka, logLevel } = require("kafkajs");
const [broker, ca, mechanism, username, password, topic, n] = process.argv.slice(2);
const kafka = new Kafka({
  brokers: [broker], logLevel: logLevel.NOTHING,
  ssl: { ca: [fs.readFileSync(ca)], rejectUnauthorized: true },
  sasl: { mechanism: mechanism.toLowerCase(), username, password },
});
(async () => {
  const count = parseInt(n, 10);
  const producer = kafka.producer({ allowAutoTopicCreation: true });
  await producer.connect();
  const messages = [...Array(count).keys()].map((i) => ({ value: `js${i}` }));
  await producer.send({ topic, messages, acks: -1 });
  await producer.disconnect();
  const consumer = kafka.consumer({ groupId: `js-${Date.now()}` });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let got = 0;
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${got} records`)), 20000);
    consumer.run({ eachMessage: async () => { got += 1; if (got >= count) { clearTimeout(timer); resolve(); } } });
  });
  await consumer.disconnect();
  console.log(got);
})().catch((e) => { console.error(e.message); process.exit(1); });

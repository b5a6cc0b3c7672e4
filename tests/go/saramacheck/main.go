// Command saramacheck runs one round trip of sarama (Debian's
// golang-github-shopify-sarama-dev, 1.22) against a broker: a third client
// family (Go) beside librdkafka and the Python clients.
//
// Two client configurations are used, as deployments do:
//   - "modern" (Kafka 2.1.0): produce (Produce v3, RecordBatch), consume
//     (Fetch v4) and a consumer group (JoinGroup v1, OffsetCommit v1,
//     which sarama 1.22 always sends for group commits);
//   - "legacy" (Kafka 0.10.0, Burrow's packaged default): ListOffsets v0,
//     OffsetCommit v0, OffsetFetch v0; admin clients configured for Kafka
//     0.10.1 (CreateTopics v0, DeleteTopics v0) and 0.11.0 (CreateTopics v1
//     with validate_only, DescribeConfigs v0, which sarama 1.22 always
//     sends): the versions Kafka 4 removed and this broker serves.
//
// Every step prints one line; the first failure exits non-zero with the
// step that failed.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/Shopify/sarama"
)

// stepTimeout bounds every step that waits on the broker.
const stepTimeout = 30 * time.Second

func main() {
	brokers := flag.String("brokers", "127.0.0.1:9092", "bootstrap host:port, comma separated")
	topic := flag.String("topic", "sarama-check", "topic to create, use and delete")
	group := flag.String("group", "sarama-check-group", "consumer group id")
	messages := flag.Int("messages", 20, "records to produce")
	flag.Parse()
	addrs := strings.Split(*brokers, ",")
	c := check{addrs: addrs, topic: *topic, group: *group, messages: *messages}
	c.run()
	fmt.Println("OK")
}

type check struct {
	addrs    []string
	topic    string
	group    string
	messages int
}

func fail(step string, err error) {
	fmt.Fprintf(os.Stderr, "FAIL %s: %v\n", step, err)
	os.Exit(1)
}

func config(version sarama.KafkaVersion, clientID string) *sarama.Config {
	conf := sarama.NewConfig()
	conf.Version = version
	conf.ClientID = clientID
	conf.Admin.Timeout = stepTimeout
	conf.Net.DialTimeout = stepTimeout
	conf.Producer.RequiredAcks = sarama.WaitForAll
	conf.Producer.Return.Successes = true
	conf.Consumer.Return.Errors = true
	conf.Consumer.Offsets.Initial = sarama.OffsetOldest
	conf.Consumer.Offsets.CommitInterval = 100 * time.Millisecond
	return conf
}

func (c check) run() {
	legacy := config(sarama.V0_10_0_0, "sarama-legacy")
	modern := config(sarama.V2_1_0_0, "sarama-modern")

	// sarama refuses, client side, a version newer than its configured
	// Kafka version knows: CreateTopics needs 0.10.1, DescribeConfigs 0.11.
	admin, err := sarama.NewClusterAdmin(c.addrs, config(sarama.V0_10_1_0, "sarama-admin-0.10.1"))
	if err != nil {
		fail("admin 0.10.1", err)
	}
	admin011, err := sarama.NewClusterAdmin(c.addrs, config(sarama.V0_11_0_0, "sarama-admin-0.11"))
	if err != nil {
		fail("admin 0.11", err)
	}
	detail := &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}
	if err := admin.CreateTopic(c.topic, detail, false); err != nil {
		fail("CreateTopics v0", err)
	}
	fmt.Println("created topic (CreateTopics v0)")
	if err := admin011.CreateTopic(c.topic+"-validated", detail, true); err != nil {
		fail("CreateTopics v1 validate_only", err)
	}
	fmt.Println("validated a topic (CreateTopics v1)")
	c.describeConfigs(admin011)
	if err := admin011.Close(); err != nil {
		fail("admin close", err)
	}

	c.produce(modern)
	c.consume(modern)
	c.consumerGroup(modern)
	c.legacyOffsets(legacy)

	if err := admin.DeleteTopic(c.topic); err != nil {
		fail("DeleteTopics v0", err)
	}
	fmt.Println("deleted topic (DeleteTopics v0)")
	if err := admin.Close(); err != nil {
		fail("admin close", err)
	}
}

func (c check) describeConfigs(admin sarama.ClusterAdmin) {
	entries, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: c.topic})
	if err != nil {
		fail("DescribeConfigs v0", err)
	}
	for _, e := range entries {
		if e.Name == "cleanup.policy" {
			if e.Value != "delete" || !e.Default {
				fail("DescribeConfigs v0", fmt.Errorf("cleanup.policy=%q default=%v", e.Value, e.Default))
			}
			fmt.Printf("described %d configs (DescribeConfigs v0)\n", len(entries))
			return
		}
	}
	fail("DescribeConfigs v0", fmt.Errorf("no cleanup.policy among %d entries", len(entries)))
}

func value(i int) string { return fmt.Sprintf("value-%d", i) }

func (c check) produce(conf *sarama.Config) {
	producer, err := sarama.NewSyncProducer(c.addrs, conf)
	if err != nil {
		fail("producer", err)
	}
	for i := 0; i < c.messages; i++ {
		msg := &sarama.ProducerMessage{
			Topic: c.topic,
			Key:   sarama.StringEncoder(fmt.Sprintf("key-%d", i)),
			Value: sarama.StringEncoder(value(i)),
		}
		partition, offset, err := producer.SendMessage(msg)
		if err != nil {
			fail("produce", err)
		}
		if partition != 0 || offset != int64(i) {
			fail("produce", fmt.Errorf("record %d went to %d@%d", i, partition, offset))
		}
	}
	if err := producer.Close(); err != nil {
		fail("producer close", err)
	}
	fmt.Printf("produced %d records (Produce v3)\n", c.messages)
}

func (c check) consume(conf *sarama.Config) {
	consumer, err := sarama.NewConsumer(c.addrs, conf)
	if err != nil {
		fail("consumer", err)
	}
	pc, err := consumer.ConsumePartition(c.topic, 0, sarama.OffsetOldest)
	if err != nil {
		fail("consume partition", err)
	}
	deadline := time.After(stepTimeout)
	for i := 0; i < c.messages; i++ {
		select {
		case msg := <-pc.Messages():
			if msg.Offset != int64(i) || string(msg.Value) != value(i) {
				fail("consume", fmt.Errorf("got %q at %d, want %q at %d", msg.Value, msg.Offset, value(i), i))
			}
		case err := <-pc.Errors():
			fail("consume", err)
		case <-deadline:
			fail("consume", fmt.Errorf("timed out after %d of %d records", i, c.messages))
		}
	}
	pc.AsyncClose()
	if err := consumer.Close(); err != nil {
		fail("consumer close", err)
	}
	fmt.Printf("consumed %d records (Fetch v4)\n", c.messages)
}

// groupHandler marks every record and reports when all were seen.
type groupHandler struct {
	want int
	seen int
	mu   sync.Mutex
	done chan struct{}
}

func (h *groupHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *groupHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h *groupHandler) ConsumeClaim(session sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for msg := range claim.Messages() {
		session.MarkMessage(msg, "")
		h.mu.Lock()
		h.seen++
		if h.seen == h.want {
			close(h.done)
		}
		h.mu.Unlock()
	}
	return nil
}

func (c check) consumerGroup(conf *sarama.Config) {
	group, err := sarama.NewConsumerGroup(c.addrs, c.group, conf)
	if err != nil {
		fail("consumer group", err)
	}
	handler := &groupHandler{want: c.messages, done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	consumed := make(chan error, 1)
	go func() { consumed <- group.Consume(ctx, []string{c.topic}, handler) }()
	select {
	case <-handler.done:
	case err := <-group.Errors():
		fail("consumer group", err)
	case err := <-consumed:
		fail("consumer group", fmt.Errorf("Consume returned early: %v", err))
	case <-time.After(stepTimeout):
		fail("consumer group", fmt.Errorf("timed out after %d of %d records", handler.seen, c.messages))
	}
	cancel()
	if err := <-consumed; err != nil {
		fail("consumer group", err)
	}
	// Close commits what was marked.
	if err := group.Close(); err != nil {
		fail("consumer group close", err)
	}
	fmt.Printf("group %s consumed %d records (JoinGroup v1, OffsetCommit v1)\n", c.group, c.messages)
}

func (c check) legacyOffsets(conf *sarama.Config) {
	client, err := sarama.NewClient(c.addrs, conf)
	if err != nil {
		fail("legacy client", err)
	}
	defer client.Close()
	newest, err := client.GetOffset(c.topic, 0, sarama.OffsetNewest)
	if err != nil || newest != int64(c.messages) {
		fail("ListOffsets v0 latest", fmt.Errorf("offset %d, err %v", newest, err))
	}
	oldest, err := client.GetOffset(c.topic, 0, sarama.OffsetOldest)
	if err != nil || oldest != 0 {
		fail("ListOffsets v0 earliest", fmt.Errorf("offset %d, err %v", oldest, err))
	}
	fmt.Printf("listed offsets %d..%d (ListOffsets v0)\n", oldest, newest)

	coordinator, err := client.Coordinator(c.group)
	if err != nil {
		fail("coordinator", err)
	}
	if got := c.fetchOffset(coordinator, c.group); got != int64(c.messages) {
		fail("OffsetFetch v0", fmt.Errorf("group %s committed %d, want %d", c.group, got, c.messages))
	}
	fmt.Printf("group %s committed offset %d (OffsetFetch v0)\n", c.group, c.messages)

	// A v0 commit outside any group, read back with v0.
	simple := c.group + "-v0"
	coordinator, err = client.Coordinator(simple)
	if err != nil {
		fail("coordinator", err)
	}
	commit := &sarama.OffsetCommitRequest{Version: 0, ConsumerGroup: simple}
	commit.AddBlock(c.topic, 0, 5, 0, "v0-metadata")
	resp, err := coordinator.CommitOffset(commit)
	if err != nil {
		fail("OffsetCommit v0", err)
	}
	if kerr := resp.Errors[c.topic][0]; kerr != sarama.ErrNoError {
		fail("OffsetCommit v0", kerr)
	}
	if got := c.fetchOffset(coordinator, simple); got != 5 {
		fail("OffsetCommit v0", fmt.Errorf("read back %d, want 5", got))
	}
	fmt.Println("committed and read back offset 5 (OffsetCommit v0, OffsetFetch v0)")
}

func (c check) fetchOffset(coordinator *sarama.Broker, group string) int64 {
	request := &sarama.OffsetFetchRequest{Version: 0, ConsumerGroup: group}
	request.AddPartition(c.topic, 0)
	resp, err := coordinator.FetchOffset(request)
	if err != nil {
		fail("OffsetFetch v0", err)
	}
	block := resp.GetBlock(c.topic, 0)
	if block == nil {
		fail("OffsetFetch v0", fmt.Errorf("no block for %s-0", c.topic))
	}
	if block.Err != sarama.ErrNoError {
		fail("OffsetFetch v0", block.Err)
	}
	return block.Offset
}

"""The fixed vocabulary the corpus is written from: ranked words, tag names, titles and people.

The lists are in rough frequency order: the corpus draws words by rank with a Zipf law, so the
first function words are in nearly every article, the technical words in many, and the generated
long tail (see `corpus.vocabulary`) in only a few.
"""

from __future__ import annotations

# The commonest English words, most frequent first (FTS5 has no stop words: these are indexed).
FUNCTION_WORDS = """
the of and to a in is that for it with as on be this are by we you not or at from but can have
an which when so if all one more was will they its there our do has each only how what than then
into also because where about most other some any these no out up just every would should before
after same two first while through without does much many both once still even over under
between until again those here very time way make need use new like well own them their instead
never always often per
""".split()

# Technical words, the most common first. `corpus.COMMON_WORD` is the first of them.
TECH_WORDS = """
query data service request server database index cache user code test table deploy cluster
latency response memory model build api client container function configuration error value
version performance application system process thread connection transaction schema migration
release feature pipeline network traffic load storage disk file log metric alert dashboard trace
span event message queue worker job task batch stream partition replica shard node pod image
registry secret token session cookie header route endpoint handler middleware framework library
package dependency module component state render browser page layout style bundle compiler
runtime type interface class object method field record row column key lock write read commit
rollback snapshot backup restore failover primary secondary leader follower consensus timeout
retry backoff circuit breaker limit quota throughput bandwidth cpu core heap garbage allocation
pointer buffer socket protocol encryption certificate password hash signature vulnerability
attack permission role policy audit compliance scanner firewall proxy gateway balancer dns
domain tenant account billing invoice order payment customer product inventory search ranking
training inference prediction embedding vector tensor gradient loss accuracy dataset label
sample experiment baseline evaluation drift monitoring observability incident outage postmortem
oncall runbook rollout canary flag environment staging production terraform ansible helm chart
manifest yaml json serializer parser validator form input output template view controller
resolver mutation subscription websocket polling webhook callback promise async await coroutine
scheduler cron timer clock timestamp timezone sequence counter histogram percentile median
average budget cost savings capacity scaling autoscaler rebalance compaction vacuum planner
optimizer statistics cardinality selectivity join subquery predicate filter sort aggregate
window cursor pagination offset prefix suffix tokenizer stemming snippet highlight relevance
score replication postgres mysql sqlite redis kafka rabbitmq elasticsearch kubernetes docker
python rust golang java typescript javascript react vue svelte django flask fastapi rails spring
nginx envoy istio linux kernel systemd git github branch merge rebase review approval reviewer
author editor draft revision diff patch bug fix regression benchmark profiler flamegraph
sampling bottleneck hotspot contention deadlock race mutex semaphore channel actor goroutine
executor pool fork signal shutdown graceful healthcheck readiness liveness probe sidecar
daemon agent operator controller crd namespace volume mount secretstore vault kms rotation
expiry refresh oauth oidc saml jwt scope claim grant consent csrf xss injection sanitizer
escaping validation allowlist denylist ratelimit throttling abuse spam captcha fingerprint
anomaly classifier regression forest boosting xgboost lightgbm pytorch tensorflow notebook
feature store pipeline airflow dag lineage warehouse lakehouse parquet avro protobuf grpc
graphql rest openapi swagger sdk cli terminal shell script makefile dockerfile compose
artifact cdn edge origin ttl invalidation eviction lru warmup prefetch lazy eager
normalization denormalization constraint foreign unique trigger view materialized refresh
isolation serializable snapshot phantom anomaly vacuuming autovacuum bloat wal checkpoint
fsync durability consistency availability tolerance quorum election heartbeat gossip
membership topology region zone latency jitter packet tcp udp http tls quic handshake
keepalive multiplexing compression gzip brotli encoding charset unicode locale accessibility
aria contrast keyboard focus screenreader semantic markup hydration ssr streaming suspense
memoization selector reducer store hook effect context portal virtualization lighthouse
""".split()

# Real-looking tag names; `corpus.tag_names` tops them up to 300 with topic-and-aspect pairs.
TAG_NAMES = """
PostgreSQL|Kubernetes|Docker|Python|Rust|Go|TypeScript|JavaScript|React|Vue|Svelte|Django|Flask|
FastAPI|Rails|Spring|Node.js|NestJS|GraphQL|REST|gRPC|Kafka|RabbitMQ|Redis|Elasticsearch|SQLite|
MySQL|MongoDB|Cassandra|ClickHouse|Terraform|Ansible|Helm|ArgoCD|CI/CD|GitHub Actions|Observability|
OpenTelemetry|Prometheus|Grafana|Tracing|Logging|SRE|Incident Response|Postmortems|Security|
OAuth2|OpenID Connect|JWT|Cryptography|TLS|XSS|CSRF|SQL Injection|Threat Modeling|Zero Trust|
Secrets Management|Machine Learning|Deep Learning|PyTorch|TensorFlow|XGBoost|MLOps|Feature Stores|
Embeddings|Vector Search|LLMs|RAG|Fine-Tuning|Model Serving|Forecasting|Data Engineering|Airflow|
dbt|Spark|Parquet|Data Warehouses|Caching|Performance|Profiling|Concurrency|Async|Microservices|
Event Sourcing|CQRS|Domain-Driven Design|API Design|Testing|Property-Based Testing|TDD|Refactoring|
Code Review|Accessibility|CSS|Web Performance|Core Web Vitals|htmx|WebAssembly|Linux|Networking|
DNS|Load Balancing|Service Mesh|Serverless|AWS|GCP|Azure|Cost Optimization|Full-Text Search
""".replace("\n", "").split("|")

TAG_TOPICS = """
Query|Index|Cache|Queue|Schema|Migration|Deployment|Cluster|Container|Pipeline|Session|Token|
Search|Storage|Replication|Backup|Release|Frontend|Backend|Database|Model|Stream|Batch|Network
""".replace("\n", "").split("|")

TAG_ASPECTS = """
Design|Tuning|Patterns|Testing|Security|Monitoring|Scaling|Debugging|Internals|Strategies|
Pitfalls|Automation|Planning|Recovery|Benchmarks|Architecture
""".replace("\n", "").split("|")

CATEGORIES = ["Backend", "Security", "Database", "Frontend", "DevOps", "Machine Learning"]
# How often each category is chosen, in the order above.
CATEGORY_WEIGHTS = [30, 12, 20, 12, 18, 8]

# {topic} is one of the article's tags, {a}/{b} are technical words, {n} a number.
TITLE_TEMPLATES = [
    "{topic} in Production: What We Learned",
    "A Practical Guide to {topic}",
    "How We Cut {a} {b} with {topic}",
    "Understanding {topic} {a}",
    "{topic} vs {other}: Choosing the Right {a}",
    "Debugging {a} {b} in {topic}",
    "Why Your {a} Needs {topic}",
    "{topic} Patterns for {a} {b}",
    "Scaling {topic} to {n} Requests per Second",
    "The Hidden Cost of {a} {b}",
    "{topic} Without the Pain: {a} and {b}",
    "From {a} to {b}: Migrating to {topic}",
    "Lessons from {n} {a} Incidents with {topic}",
    "Getting {a} Right in {topic}",
]

AUTHORS = [
    "Maya Okafor", "Liam Chen", "Sofia Rossi", "Noah Fischer", "Aisha Rahman", "Mateo García",
    "Hannah Kowalski", "Kenji Watanabe", "Chloé Martin", "Ravi Iyer", "Elena Petrova",
    "Tomás Silva", "Grace Mensah", "Jonas Berg", "Priya Nair",
]  # fmt: skip
REVIEWERS = ["Dennis Atonya", "Ingrid Solberg", "Marcus Webb"]
AI_MODELS = ["claude-sonnet-4-5", "claude-opus-4-1", "gpt-5", "gemini-2.5-pro"]

# Syllables for the long tail of made-up words (project names, identifiers, jargon).
ONSETS = "b c d f g h j k l m n p r s t v w z br cl dr fl gr kr pl st tr th sh ch".split()
VOWELS = "a e i o u a e i o ai ea ou".split()
CODAS = ["", "", "", "n", "r", "s", "x", "l", "m", "th", "nd", "rk", "st"]

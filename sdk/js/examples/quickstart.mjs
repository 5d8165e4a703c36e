import { DC1RenterClient } from "dc1-renter-sdk";

const dc1 = new DC1RenterClient({
  apiKey: process.env.DC1_API_KEY, // dc1-renter-…
  baseUrl: process.env.DC1_BASE_URL, // optional, defaults to https://api.dcp.sa
});

// 1. Check balance (amounts: integer halala, and SAR as exact strings)
const balance = await dc1.balance();
console.log(`Balance: ${balance.balanceSar} SAR`);

// 2. Find a live GPU with at least 16 GB
const [provider] = await dc1.listProviders({ minVramGb: 16 });
if (!provider) throw new Error("No live providers available");
console.log(`Using: ${provider.name} (${provider.gpuModel})`);

// 3. Submit the job: its cost is held until it ends
const job = await dc1.submitJob({
  providerId: provider.id,
  jobType: "llm_inference",
  params: { model: "gemma3-270m", prompt: "What is the capital of Saudi Arabia?", maxTokens: 128 },
  durationMinutes: 5,
});
console.log(`Job submitted: ${job.id} (holding ${job.costSar} SAR)`);

// 4. Wait: polls every 5 s, backs off on 429, gives up after 10 minutes, throws if the job failed
const result = await dc1.waitForJob(job.id, { timeoutMs: 10 * 60_000 });
console.log(`Response: ${result.result?.output}`);
console.log(`Cost: ${result.costSar} SAR`);

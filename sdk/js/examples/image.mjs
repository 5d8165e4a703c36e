import { writeFileSync } from "node:fs";
import { DC1RenterClient } from "dc1-renter-sdk";

const dc1 = new DC1RenterClient({ apiKey: process.env.DC1_API_KEY, baseUrl: process.env.DC1_BASE_URL });

async function generateImage(prompt) {
  const [provider] = await dc1.listProviders({ minVramGb: 16 });
  if (!provider) throw new Error("No live provider with 16 GB of GPU memory");
  const job = await dc1.submitJob({
    providerId: provider.id,
    jobType: "image_generation",
    durationMinutes: 10,
    params: {
      prompt,
      model: "stabilityai/stable-diffusion-xl-base-1.0",
      steps: 30,
      width: 1024,
      height: 1024,
    },
  });
  const output = await dc1.waitForJob(job.id);
  writeFileSync("output.png", Buffer.from(output.result.image_base64, "base64"));
  console.log(`Saved output.png (cost: ${output.costSar} SAR)`);
}

await generateImage("A camel caravan at sunset over the Empty Quarter, oil painting style");

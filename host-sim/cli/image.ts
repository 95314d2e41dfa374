import { OtaError } from "../../modules/errors";
import type { Command } from "./common";

// Placeholder: replaced by the issue that implements 'xsota image'.
export const command: Command = {
  name: "image",
  summary: "not implemented yet",
  help: "Usage: xsota image (not implemented yet)",
  async run() {
    throw new OtaError("USAGE", "'xsota image' is not implemented yet");
  },
};

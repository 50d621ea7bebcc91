"""Wire protocol: messages (one file), frames and authentication, connections."""

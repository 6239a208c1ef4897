"""GraphQL fuzzing of a running trust: the gateway and every node, valid and invalid input."""

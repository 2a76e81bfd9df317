"""What the tests share: real nodes, fake peers, the CLI runner, flows and checks."""

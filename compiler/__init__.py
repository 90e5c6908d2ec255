"""The compiler: capture strategies, the graph IR, passes, code generation and the plan cache."""

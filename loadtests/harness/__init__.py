"""What the benchmarks and drills share: the stack, students, invariants, HTTP clients, reports."""

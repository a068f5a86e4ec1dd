NAMES = {"a", "b", "c"}

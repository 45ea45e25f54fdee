"""Read models for the faces (widgets, server extension, CLI, benchmarks): what the user looks at, computed
from the store in few queries. Nothing here writes."""

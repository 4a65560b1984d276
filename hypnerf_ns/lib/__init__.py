"""The library under the tasks and verbs: posed views, rendering a NeRF, metrics, a loaded prior,
cameras. Imports the method and below; never a task or a verb."""

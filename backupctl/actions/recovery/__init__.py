"""The recovery onto a replacement server (SPEC §11): `target` (TARGET and its refusals),
`tree` (the snapshot's nodes), `plan` (everything decided before anything runs), `proof`
(the proof on the target), `run` (the recorded pipeline)."""

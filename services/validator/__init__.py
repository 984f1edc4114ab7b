"""The registration validator: a Faust agent that validates registrations and emits
contribution schedules (or rejections)."""

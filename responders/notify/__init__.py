"""Notifications (the `notifier` stage): where alert changes and escalations go
(`dispatch`, `config`), what they say (`message`), the outbox they wait in (`log`), and
one module per channel (`webhook`, `dingtalk`, `wecom`, `email`). README "Escalation
and notifications" has the whole story."""

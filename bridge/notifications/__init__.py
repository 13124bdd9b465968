"""Approver notifications: telling the people (and channels) an access request waits for.

The access request service queues an `approval_needed` outbox row in the transaction of the
change that makes approvers needed (`access_requests.notices`). This part delivers it in two
outbox steps, so that each message is retried on its own and sent once:

1. fan-out (`fan_out.FanOut`, kind `approval_needed`): read the request in words, pick the
   recipients the configuration names for its template (those policy allows, for `decide`
   and `emergency_review`), and queue one `approver_message` row per recipient and channel,
   each under a dedupe key, so a fan-out delivered twice, or by two replicas, queues nothing
   twice;
2. delivery (`delivery.MessageDelivery`, kind `approver_message`): send that one message,
   by e-mail (`email`) or webhook (`webhook`), then record it in the audit trail.

Who is told through which channel is `[notifications]` (`settings.NotificationSettings`);
`routing` turns it into deliveries, `messages` puts the request into words.
"""

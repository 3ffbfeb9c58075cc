"""Plans (our price on top of the CPO's) and each account's plan history (subscriptions)."""

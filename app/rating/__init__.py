"""Rating: turning a CDR into money with the pure pricing engine (CPO cost, our fees, VAT, margin), and
reconciling our calculation with the CPO's."""

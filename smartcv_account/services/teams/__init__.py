"""Teams: members with roles, invitations bounded by seats, the plan an operator assigns, the
team's audit log.

The order of locks (PostgreSQL row locks; on SQLite a transaction's first write takes the
database's one writer lock, which orders everything at once):

1. the acting user's row first (`locking.lock_user`), as in every write of a user's own data;
2. then team rows, several in ascending id (`access.lock_teams`);
3. then rows of the team's tables (members, invitations, events).

No transaction locks another user's row, and none takes a user's row after a team's: removing
someone changes only the team's tables, and the usage call, which locks only the user's row,
reads the membership without locking it. So two transactions never wait for each other in
opposite orders. Every change of members or invitations holds its team's row, so the seat
count (members plus pending invitations, `seats.py`) is judged by one transaction at a time.
"""

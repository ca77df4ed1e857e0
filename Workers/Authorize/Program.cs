// Replaced by the worker host in the next commit (hosting defaults land first).
return 0;

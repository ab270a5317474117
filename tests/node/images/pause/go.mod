module llsd.test/pause

go 1.19
